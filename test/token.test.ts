// The token codec alone: verified tokens are remembered, bounded, and every request gets its own payload.
import { test } from 'tap'
import { TokenInvalidError } from '../lib/errors.js'
import { createCodec, verifiedCacheSize } from '../lib/token.js'

function encode (value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

/** A codec over a stub verifier that counts the crypto calls and accepts tokens whose signature is "good". */
function countingCodec () {
  const calls = { verify: 0 }
  const codec = createCodec([{
    kid: undefined,
    algorithm: 'HS256',
    jwt: {
      sign: () => 'unused',
      verify (token) {
        calls.verify++
        const [, payload, signature] = token.split('.')
        if (signature !== 'good') throw new Error('bad signature')
        return JSON.parse(Buffer.from(payload, 'base64url').toString())
      }
    }
  }])
  const header = encode({ alg: 'HS256' })
  const token = (n: number, signature = 'good'): string => `${header}.${encode({ n, roles: ['user'] })}.${signature}`
  return { codec, calls, token }
}

test('a token is verified once; each request gets its own copy of the payload', async (t) => {
  const { codec, calls, token } = countingCodec()
  const first = codec.verify(token(1))
  const second = codec.verify(token(1))
  t.equal(calls.verify, 1, 'the crypto ran once')
  t.same(second, { n: 1, roles: ['user'] })
  first.n = 2
  ;(second.roles as string[]).push('admin')
  t.same(codec.verify(token(1)), { n: 1, roles: ['user'] }, 'changes to one request\'s payload reach no other')
})

test('bad tokens are not remembered, and the cache is bounded', async (t) => {
  const { codec, calls, token } = countingCodec()
  t.throws(() => codec.verify(token(1, 'bad0')), TokenInvalidError)
  t.throws(() => codec.verify(token(1, 'bad0')), TokenInvalidError)
  t.equal(calls.verify, 2, 'a rejected token is checked again each time')
  for (let n = 0; n <= verifiedCacheSize; n++) codec.verify(token(n))
  t.equal(calls.verify, 2 + verifiedCacheSize + 1)
  codec.verify(token(verifiedCacheSize))
  t.equal(calls.verify, 2 + verifiedCacheSize + 1, 'the newest is remembered')
  codec.verify(token(0))
  t.equal(calls.verify, 2 + verifiedCacheSize + 2, 'the oldest was dropped and is verified again')
})

test('rejecting a token leaves Error.stackTraceLimit as it was', async (t) => {
  const { codec, token } = countingCodec()
  const before = Error.stackTraceLimit
  t.throws(() => codec.verify(token(1, 'bad0')), TokenInvalidError)
  t.throws(() => codec.verify('not-a-token'), TokenInvalidError)
  t.equal(Error.stackTraceLimit, before)
})

test('random ids: 128 bits, base64url, all different across refills of the pool', async (t) => {
  const { randomId } = await import('../lib/token.js')
  const ids = new Set(Array.from({ length: 1000 }, () => randomId()))
  t.equal(ids.size, 1000)
  for (const id of ids) t.match(id, /^[A-Za-z0-9_-]{22}$/)
  t.equal(Buffer.from([...ids][0], 'base64url').length, 16)
})
