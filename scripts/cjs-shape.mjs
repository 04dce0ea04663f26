// Gives the CommonJS build the usual Fastify plugin export shape:
// require('fastify-token-cookie') is the plugin, with .default, .tokenCookie and the named exports on it,
// and its types say so (`export =` of a function merged with a namespace, as @fastify/cookie does).
import { appendFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs'

const cjs = 'dist/cjs'
writeFileSync(`${cjs}/package.json`, JSON.stringify({ type: 'commonjs' }) + '\n')
appendFileSync(`${cjs}/index.js`, '\nmodule.exports = Object.assign(exports.default, exports);\n')

// The ES-shaped declarations become `api.d.ts`; index.d.ts re-exports them in the CommonJS shape.
renameSync(`${cjs}/index.d.ts`, `${cjs}/api.d.ts`)
const api = await import(`../${cjs}/index.js`)
const values = Object.keys(api.default).filter((name) => !['default', 'tokenCookie', 'fastifyTokenCookie'].includes(name))
// Every type name types/index.d.ts exports: declared there, or re-exported with `export type { … } from`.
const typesSource = readFileSync(`${cjs}/types/index.d.ts`, 'utf8')
const typeNames = [
  ...[...typesSource.matchAll(/^export (?:type|interface) (\w+)/gm)].map((match) => match[1]),
  ...[...typesSource.matchAll(/^export type \{([^}]+)\}/gm)].flatMap((match) => match[1].split(',').map((name) => name.trim()))
]

writeFileSync(`${cjs}/index.d.ts`, `import type { FastifyInstance } from 'fastify'
import * as api from './api.js'

type TokenCookiePlugin = typeof api.tokenCookie

// Options spelt out (not Parameters<…>) so that register() infers them from the plugin, not from the literal.
declare function tokenCookie (instance: FastifyInstance, options: api.TokenCookieOptions): Promise<void>

declare namespace tokenCookie {
${[...new Set(typeNames)].map((name) => `  export type ${name} = api.${name}`).join('\n')}
${values.map((name) => `  export import ${name} = api.${name}`).join('\n')}
  export const tokenCookie: TokenCookiePlugin
  export { tokenCookie as default }
}

export = tokenCookie
`)
