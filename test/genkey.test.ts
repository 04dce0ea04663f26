// bin/genkey.js (`npx fastify-token-cookie-genkey`): a fresh secret the plugin accepts, on one line.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import Fastify from 'fastify'
import t from 'tap'
import tokenCookie from '../index.js'

const execFileAsync = promisify(execFile)
const root = join(dirname(fileURLToPath(import.meta.url)), '..')

t.test('package.json names the bin', async (t) => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin?: Record<string, string>, files?: string[] }
  t.same(pkg.bin, { 'fastify-token-cookie-genkey': 'bin/genkey.js' })
  t.ok(pkg.files?.includes('bin'), 'and ships it')
})

t.test('prints 32 random bytes in base64url, different every time, that the plugin takes as its secret', async (t) => {
  const run = async (): Promise<string> => (await execFileAsync(process.execPath, [join(root, 'bin', 'genkey.js')])).stdout
  const [first, second] = await Promise.all([run(), run()])
  t.match(first, /^[A-Za-z0-9_-]{43}\n$/, 'one line of base64url')
  t.equal(Buffer.from(first.trim(), 'base64url').length, 32, '32 bytes')
  t.not(first, second, 'a new key each run')

  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tokenCookie, { secret: first.trim() })
  app.get('/login', async (_request, reply) => ({ token: await reply.setTokenCookie({ sub: 'alice' }) }))
  t.equal((await app.inject('/login')).statusCode, 200, 'accepted as a secret')
})
