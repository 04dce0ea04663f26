// Gives the CommonJS build the usual Fastify plugin export shape:
// require('fastify-token-cookie') is the plugin, with .default, .tokenCookie and the named exports on it.
import { appendFileSync, writeFileSync } from 'node:fs'

writeFileSync('dist/cjs/package.json', JSON.stringify({ type: 'commonjs' }) + '\n')
appendFileSync('dist/cjs/index.js', '\nmodule.exports = Object.assign(exports.default, exports);\n')
