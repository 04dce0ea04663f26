// The published package, as a user gets it: `npm pack`, install the tarball with fastify in a fresh
// folder, then use it from ESM and CommonJS JavaScript and type-check TypeScript consumers against it.
//
// `npm pack` runs `prepack` (`npm run build`, which starts with `rm -rf dist`). To leave the working tree
// alone while other tests run, it packs a copy of the repository (its node_modules symlinked), in a
// temporary folder: the repository itself is only read.
import { execFile } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

t.setTimeout(180_000)

const execFileAsync = promisify(execFile)
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const tsc = join(root, 'node_modules', '.bin', 'tsc')
const secret = 'a-consumer-secret-of-at-least-32-bytes!'

// Children get a plain environment: no tap loader or coverage (NODE_OPTIONS, NODE_V8_COVERAGE, TAP_*), and none
// of the repository's package and lifecycle variables from an enclosing `npm test` (npm_config_* stay: registry, cache).
const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) =>
  !/^(NODE_OPTIONS|NODE_V8_COVERAGE|INIT_CWD|TAP|TAP_.*|_TAPJS_.*|npm_package_.*|npm_lifecycle_.*)$/.test(key)))

async function run (command: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 })
    return stdout
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string, stderr?: string }
    throw new Error(`${basename(command)} ${args.join(' ')} failed in ${cwd}:\n${stdout ?? ''}\n${stderr ?? ''}`, { cause: error })
  }
}

const work = mkdtempSync(join(tmpdir(), 'fastify-token-cookie-pack-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const source = join(work, 'source')
const packDir = join(work, 'pack')
const consumer = join(work, 'consumer')

// What `git clone` would bring, plus stray files in the tree: build output, dependencies and test output are left out.
const notCopied = new Set(['dist', '.tap', 'coverage', 'test-artifacts'])
cpSync(root, source, {
  recursive: true,
  filter: (path) => {
    const segments = relative(root, path).split(sep)
    return !notCopied.has(segments[0] ?? '') && !segments.includes('node_modules') && !segments.includes('.git') && !path.endsWith('.tgz')
  }
})
symlinkSync(join(root, 'node_modules'), join(source, 'node_modules'), 'dir')
mkdirSync(packDir)
mkdirSync(consumer)

const libModules = readdirSync(join(root, 'lib')).filter((file) => file.endsWith('.ts')).map((file) => file.slice(0, -3))

const esmScript = `
import Fastify from 'fastify'
import tokenCookie, { tokenCookie as named, TokenMissingError, memoryStore } from 'fastify-token-cookie'
import { redisStore } from 'fastify-token-cookie/redis'
${consumerBody('esm', 'typeof TokenMissingError', 'tokenCookie === named', '[typeof memoryStore, typeof redisStore]')}
await main()
`

const cjsScript = `
'use strict'
const Fastify = require('fastify')
const tokenCookie = require('fastify-token-cookie')
const { redisStore } = require('fastify-token-cookie/redis')
${consumerBody('cjs', 'typeof tokenCookie.TokenMissingError', 'tokenCookie.default === tokenCookie && tokenCookie.tokenCookie === tokenCookie', '[typeof tokenCookie.memoryStore, typeof redisStore]')}
main().catch((error) => { console.error(error); process.exitCode = 1 })
`

/** A consumer's app: login sets the cookie, a protected route verifies it. Prints what the test checks, as JSON. */
function consumerBody (format: string, errorExport: string, sameExport: string, stores: string): string {
  return `
async function main () {
  const app = Fastify()
  await app.register(tokenCookie, { secret: '${secret}' })
  app.post('/login', async (request, reply) => ({ access_token: await reply.setTokenCookie({ sub: 'alice' }) }))
  app.get('/me', { preHandler: async (request) => { await request.verifyToken() } }, async (request) => {
    const payload = await request.verifyToken()
    return { sub: payload.sub, times: [typeof payload.iat, typeof payload.exp, typeof payload.auth_time], user: request.user.sub }
  })
  const login = await app.inject({ method: 'POST', url: '/login' })
  const cookie = login.cookies.find((c) => c.name === 'token')
  const me = await app.inject({ method: 'GET', url: '/me', cookies: { token: cookie ? cookie.value : '' } })
  const anonymous = await app.inject({ method: 'GET', url: '/me' })
  await app.close()
  // encrypt: true loads jose (ESM only) from CommonJS too: require(esm), Node 20.19 and later.
  const encrypting = Fastify()
  await encrypting.register(tokenCookie, { secret: '${secret}', encrypt: true, bearer: true })
  encrypting.post('/login', async (request, reply) => ({ access_token: await reply.setTokenCookie({ sub: 'alice' }) }))
  encrypting.get('/me', async (request) => (await request.verifyToken()).sub)
  const encryptedToken = (await encrypting.inject({ method: 'POST', url: '/login' })).json().access_token
  const encryptedMe = await encrypting.inject({ method: 'GET', url: '/me', headers: { authorization: 'Bearer ' + encryptedToken } })
  await encrypting.close()
  console.log(JSON.stringify({
    format: '${format}',
    plugin: typeof tokenCookie,
    sameExport: ${sameExport},
    errorExport: ${errorExport},
    stores: ${stores},
    login: {
      status: login.statusCode,
      cookieIsToken: cookie !== undefined && cookie.value === login.json().access_token,
      httpOnly: cookie && cookie.httpOnly,
      secure: cookie && cookie.secure,
      sameSite: cookie && cookie.sameSite,
      path: cookie && cookie.path
    },
    me: { status: me.statusCode, body: me.json() },
    anonymous: { status: anonymous.statusCode, code: anonymous.json().code },
    encrypted: { segments: encryptedToken.split('.').length, status: encryptedMe.statusCode, sub: encryptedMe.body }
  }))
}`
}

const esmTypes = `
import Fastify from 'fastify'
import tokenCookie, {
  tokenCookie as named, TokenMissingError, type TokenCookieOptions, type TokenPayload
} from 'fastify-token-cookie'

const options: TokenCookieOptions = { secret: '${secret}', policy: 'sliding', maxAge: '30m', absoluteMaxAge: '12h', renewAfter: 0.5 }
const same: typeof tokenCookie = named
const app = Fastify()
await app.register(same, options)
app.post('/login', async (_request, reply) => {
  const token: string = await reply.setTokenCookie({ sub: 'alice' }, { policy: 'persistent', maxAge: '7d' })
  // @ts-expect-error a payload is an object
  await reply.setTokenCookie('alice')
  return { access_token: token }
})
app.get('/me', { config: { tokenCookie: { renew: false } } }, async (request, reply) => {
  const payload: TokenPayload = await request.verifyToken()
  const { sub, auth_time: authTime } = await request.verifyToken<{ sub: string }>()
  reply.clearTokenCookie()
  return { sub: sub.toUpperCase(), authTime, exp: payload.exp }
})
const code: 'FST_TOKEN_COOKIE_MISSING' = new TokenMissingError().code
// @ts-expect-error the types are loaded (not any): an unknown policy does not compile
await app.register(tokenCookie, { secret: '${secret}', policy: 'forever' })
export { code }
`

// CommonJS TypeScript: the default import (compiled to `require().default`), `.default` and `.tokenCookie`.
const cjsTypes = `
import Fastify = require('fastify')
import tokenCookieModule = require('fastify-token-cookie')
import tokenCookie from 'fastify-token-cookie'
import type { TokenPayload } from 'fastify-token-cookie'

const app = Fastify()
app.register(tokenCookie, { secret: '${secret}' })
app.register(tokenCookieModule.default, { secret: '${secret}' })
app.register(tokenCookieModule.tokenCookie, { secret: '${secret}', policy: 'persistent' })
app.get('/me', async (request, reply) => {
  const payload: TokenPayload = await request.verifyToken()
  const token: string = await reply.setTokenCookie({ sub: 'alice' })
  reply.clearTokenCookie()
  return { payload, token }
})
const code: 'FST_TOKEN_COOKIE_MISSING' = new tokenCookieModule.TokenMissingError().code
// @ts-expect-error the types are loaded (not any): an unknown policy does not compile
app.register(tokenCookie, { secret: '${secret}', policy: 'forever' })
export = code
`

// The documented CommonJS shape: `require('fastify-token-cookie')` is the plugin itself (as with fastify and its plugins).
const cjsRequireTypes = `
import Fastify = require('fastify')
import tokenCookie = require('fastify-token-cookie')

const app = Fastify()
app.register(tokenCookie, { secret: '${secret}' })
app.register(tokenCookie.default, { secret: '${secret}' })
app.register(tokenCookie.tokenCookie, { secret: '${secret}' })
app.get('/me', async (request, reply) => {
  const payload: tokenCookie.TokenPayload = await request.verifyToken()
  const login: tokenCookie.LoginOptions = { policy: 'persistent', maxAge: '7d' }
  const token: string = await reply.setTokenCookie({ sub: 'alice' }, login)
  return { payload, token }
})
const code: 'FST_TOKEN_COOKIE_MISSING' = new tokenCookie.TokenMissingError().code
const options: tokenCookie.TokenCookieOptions = { secret: '${secret}', cookie: { sameSite: 'strict' } }
app.register(tokenCookie, options)
app.log.info(code)
// @ts-expect-error the types are loaded (not any): an unknown policy does not compile
app.register(tokenCookie, { secret: '${secret}', policy: 'forever' })
export = app
`

const typecheckArgs = [
  '--noEmit', '--strict', '--skipLibCheck', 'false', '--target', 'es2022',
  '--module', 'nodenext', '--moduleResolution', 'nodenext', '--types', 'node'
]

let tarball = ''
let installed = false

t.test('npm pack ships the built JavaScript and its types, nothing else', async (t) => {
  await run('npm', ['pack', '--pack-destination', packDir, '--loglevel=error'], source)
  const tarballs = readdirSync(packDir).filter((file) => file.endsWith('.tgz'))
  t.same(tarballs, [`fastify-token-cookie-${readPackageJson(root).version}.tgz`], 'one tarball')
  tarball = join(packDir, tarballs[0] ?? 'missing.tgz')

  const files = (await run('tar', ['-tzf', tarball], work)).split('\n').filter(Boolean).sort()
  t.ok(files.length > 0, 'the tarball lists files')
  const outside = files.filter((file) => !file.startsWith('package/'))
  t.same(outside, [], 'everything under package/')
  const paths = files.map((file) => file.slice('package/'.length))

  const allowed = /^(package\.json|README(\.md)?|LICENSE(\.md|\.txt)?|bin\/genkey\.js|dist\/cjs\/package\.json|dist\/(esm|cjs)\/.+\.(js|d\.ts))$/
  t.same(paths.filter((path) => !allowed.test(path)), [], 'only package.json, README, LICENSE, the genkey bin and dist .js/.d.ts')
  t.same(paths.filter((path) => /(^|\/)(test|bench|\.ci|scripts|node_modules|coverage|\.tap)\//.test(path)), [], 'no test/, bench/, .ci/, scripts/')
  t.same(paths.filter((path) => /\.map$/.test(path)), [], 'no source maps')
  t.same(paths.filter((path) => /\.(ts|mts|cts)$/.test(path) && !/\.d\.ts$/.test(path)), [], 'no TypeScript sources')
  t.same(paths.filter((path) => /(^|\/)(tsconfig.*\.json|eslint\.config\.js|\.taprc|\.gitignore|package-lock\.json)$/.test(path)), [], 'no tooling files')

  const expected = ['package.json', 'dist/cjs/package.json']
  for (const format of ['esm', 'cjs']) {
    expected.push(`dist/${format}/index.js`, `dist/${format}/index.d.ts`, `dist/${format}/types/index.d.ts`)
    for (const module of libModules) expected.push(`dist/${format}/lib/${module}.js`, `dist/${format}/lib/${module}.d.ts`)
  }
  t.same(expected.filter((path) => !paths.includes(path)), [], 'every module, built for ESM and CommonJS, with its types')
  t.same(JSON.parse(await run('tar', ['-xzOf', tarball, 'package/dist/cjs/package.json'], work)), { type: 'commonjs' }, 'dist/cjs is CommonJS')

  const shipped = JSON.parse(await run('tar', ['-xzOf', tarball, 'package/package.json'], work)) as PackageJson
  t.equal(shipped.name, 'fastify-token-cookie')
  t.equal(shipped.type, 'module')
  t.ok(shipped.types && paths.includes(normalize(shipped.types)), `top-level types (${shipped.types}) is in the tarball`)
  const targets = [shipped.main, ...exportTargets(shipped.exports)].filter((target): target is string => typeof target === 'string')
  t.ok(targets.length >= 5, 'main and the exports map name their files')
  t.same(targets.filter((target) => !paths.includes(normalize(target))), [], 'main and every exports target are in the tarball')
})

t.test('the tarball installs into a fresh project with fastify', async (t) => {
  t.ok(tarball, 'packed')
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'token-cookie-consumer', version: '1.0.0', private: true }))
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball, 'fastify@5', '@types/node@20'], consumer)
  const installedPackage = readPackageJson(join(consumer, 'node_modules', 'fastify-token-cookie'))
  t.equal(installedPackage.name, 'fastify-token-cookie')
  t.same(readdirSync(join(consumer, 'node_modules', 'fastify-token-cookie')).sort(), ['bin', 'dist', 'package.json', ...['LICENSE', 'README.md'].filter((file) => readdirSync(root).includes(file))].sort())
  installed = true
  const key = await run(join(consumer, 'node_modules', '.bin', 'fastify-token-cookie-genkey'), [], consumer)
  t.match(key, /^[A-Za-z0-9_-]{43}\n$/, 'the fastify-token-cookie-genkey bin is installed and prints a key')
})

t.test('ESM: import tokenCookie, { tokenCookie } from the package, log in and verify', async (t) => {
  if (!installed) return t.fail('not installed')
  writeFileSync(join(consumer, 'consumer.mjs'), esmScript)
  const result = JSON.parse(await run(process.execPath, ['consumer.mjs'], consumer))
  t.same(result, expectedRun('esm'))
})

t.test('CommonJS: require() is the plugin, with .default and .tokenCookie; log in and verify', async (t) => {
  if (!installed) return t.fail('not installed')
  writeFileSync(join(consumer, 'consumer.cjs'), cjsScript)
  const { stdout, stderr } = await execFileAsync(process.execPath, ['consumer.cjs'], { cwd: consumer, env })
  t.same(JSON.parse(stdout), expectedRun('cjs'))
  t.equal(stderr, '', 'no warning: require() of the ESM-only jose is plain require(esm) from node_modules')
})

t.test('TypeScript consumers (module nodenext) type-check against the installed package', async (t) => {
  if (!installed) return t.fail('not installed')
  const consumers = { 'esm.mts': esmTypes, 'cjs.cts': cjsTypes, 'cjs-require.cts': cjsRequireTypes }
  for (const [file, text] of Object.entries(consumers)) writeFileSync(join(consumer, file), text)
  // One program for the three consumers (each file's extension sets its module format): the libraries are checked once.
  const errors = await typecheck(Object.keys(consumers))
  const errorsIn = (test: (file: string) => boolean): string[] => errors.filter((error) => test(error.file)).map((error) => error.text)

  t.same(errorsIn((file) => file.includes('node_modules/fastify-token-cookie/')), [], 'the shipped .d.ts files have no errors')
  t.same(errorsIn((file) => !(file in consumers) && !file.includes('node_modules/fastify-token-cookie/')), [], 'no errors elsewhere')
  t.same(errorsIn((file) => file === 'esm.mts'), [], 'ESM (.mts): default and named import, options, decorators, route config')
  t.same(errorsIn((file) => file === 'cjs.cts'), [], 'CommonJS (.cts): default import, .default and .tokenCookie, decorators')
  t.same(errorsIn((file) => file === 'cjs-require.cts'), [], 'CommonJS (.cts): `import tokenCookie = require()` is the callable plugin, as documented')
})

/** The type errors of a `tsc --noEmit` run over `files` in the consumer project, by file. */
async function typecheck (files: string[]): Promise<Array<{ file: string, text: string }>> {
  let output: string
  try {
    output = await run(tsc, [...typecheckArgs, '--pretty', 'false', ...files], consumer)
  } catch (error) {
    const stdout = ((error as Error).cause as { stdout?: string } | undefined)?.stdout ?? ''
    if (!/\): error TS\d+:/.test(stdout)) throw error
    output = stdout
  }
  const errors: Array<{ file: string, text: string }> = []
  for (const line of output.split('\n')) {
    const start = /^(.+?)\(\d+,\d+\): error TS\d+:/.exec(line)
    if (start?.[1] !== undefined) errors.push({ file: start[1], text: line })
    else if (line.trim() !== '' && errors.length > 0) errors[errors.length - 1]!.text += '\n' + line
  }
  return errors
}

interface PackageJson {
  name: string
  version: string
  type?: string
  main?: string
  types?: string
  exports?: unknown
}

function readPackageJson (directory: string): PackageJson {
  return JSON.parse(readFileSync(join(directory, 'package.json'), 'utf8')) as PackageJson
}

function normalize (path: string): string {
  return path.replace(/^\.\//, '')
}

/** Every file an `exports` map points at (strings at any depth). */
function exportTargets (value: unknown): string[] {
  if (typeof value === 'string') return [value]
  if (value === null || typeof value !== 'object') return []
  return Object.values(value).flatMap(exportTargets)
}

function expectedRun (format: string): unknown {
  return {
    format,
    plugin: 'function',
    sameExport: true,
    errorExport: 'function',
    stores: ['function', 'function'],
    login: { status: 200, cookieIsToken: true, httpOnly: true, secure: true, sameSite: 'Lax', path: '/' },
    me: { status: 200, body: { sub: 'alice', times: ['number', 'number', 'number'], user: 'alice' } },
    anonymous: { status: 401, code: 'FST_TOKEN_COOKIE_MISSING' },
    encrypted: { segments: 5, status: 200, sub: 'alice' }
  }
}
