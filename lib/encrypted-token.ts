// Encrypted tokens: JWE compact serialization (RFC 7516), `alg: 'dir'`, `enc: 'A256GCM'`, under a content key derived
// from each secret. jose does the cryptography; everything it would refuse, and more (`zip` above all: a deflate bomb
// is never inflated), is refused here first, for next to nothing. A token is decrypted once, then remembered.
import { hkdfSync, webcrypto } from 'node:crypto'
import { CompactEncrypt, compactDecrypt, type DecryptOptions } from 'jose'
import { describe, OptionsError, TokenInvalidError } from './errors.js'
import {
  admitted, checkedPayload, claimChecksOf, createVerifiedCache, detached, hasPrototypeKey, headerOf, isCanonicalBase64url, isInvalidToken,
  maxTokenBytes, normalizedTyp, signingKeyOf, verifiedCacheSize, type Admit, type ClaimChecks, type InvalidToken, type TokenCodec
} from './token.js'

/** A key of the app's: an HMAC secret, with the `kid` that names it in a list. */
export interface EncryptionKey {
  kid: string | undefined
  secret: string | Buffer
  /** When the key starts encrypting, ms since epoch; it decrypts at once either way. */
  signFrom?: number
}

export interface EncryptedCodecOptions {
  /** How many decrypted tokens are remembered at most; `verifiedCacheSize` by default. */
  cacheSize?: number
  /** Verify options in fast-jwt's terms (`clockTolerance` in ms): the claims of a decrypted token meet the same checks. */
  verify?: Readonly<Record<string, unknown>>
  /** Sign options: `iss`, `aud`, `sub`, `nonce` go into the claims (over the payload's), `typ` into the header. */
  sign?: Readonly<Record<string, unknown>>
  /** The longest token accepted, refused before anything is decoded; `maxTokenBytes` by default (more for chunked cookies). */
  maxTokenBytes?: number
}

/**
 * HKDF-SHA256's `info` for the content key: the same secret keys HMAC as it is and AES-GCM only through HKDF under
 * this label, so no key serves both uses.
 */
export const contentKeyInfo = 'fastify-token-cookie JWE A256GCM'

// Five base64url segments: the encrypted key empty (`dir`), a 96-bit IV (16 characters), a 128-bit tag (22).
const compactJwe = /^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/
// The only header parameters of the tokens this codec makes: any other (`zip`, `crit`, `jwk`, `epk`, `p2c`…) is refused.
const knownHeaderNames = new Set(['alg', 'enc', 'kid', 'typ'])
// jose's own checks, and no decompression whatever the header says (the header is checked before, too).
const decryptOptions: DecryptOptions = { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'], maxDecompressedLength: 0 }
const fixedClaimNames = ['iss', 'aud', 'sub', 'nonce'] as const
const maxKnownHeaders = 8

interface ContentKey {
  kid: string | undefined
  signFrom: number | undefined
  key: webcrypto.CryptoKey
  /** The protected header of the tokens it encrypts. */
  header: { alg: 'dir', enc: 'A256GCM', typ: string, kid?: string }
}

/** The AES-256-GCM key of a secret: HKDF-SHA256, no salt (the secret is a key already), `contentKeyInfo`. */
export function contentKeyOf (secret: string | Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), contentKeyInfo, 32))
}

/**
 * Encrypts with the key that signs now (`signingKeyOf`); decrypts with the key the header's `kid` names (a single
 * secret has none). The claims meet the checks a signed token's meet; what `admit` made of them is remembered, as by
 * the signing codec.
 */
export async function createEncryptedCodec<T> (keys: readonly EncryptionKey[], admit: Admit<T>, options: EncryptedCodecOptions = {}): Promise<TokenCodec<T>> {
  const { cacheSize = verifiedCacheSize, verify = {}, sign = {}, maxTokenBytes: maxBytes = maxTokenBytes } = options
  const checks = claimChecksOf(verify)
  if (checks === undefined) throw new OptionsError(`verify has an option that encrypt: true cannot check (${Object.keys(verify).join(', ')})`)
  const typ = typeof sign.typ === 'string' ? sign.typ : 'JWT'
  const contentKeys = await Promise.all(keys.map(async ({ kid, secret, signFrom }): Promise<ContentKey> => ({
    kid,
    signFrom,
    key: await webcrypto.subtle.importKey('raw', contentKeyOf(secret), 'AES-GCM', false, ['encrypt', 'decrypt']),
    header: { alg: 'dir', enc: 'A256GCM', typ, ...(kid === undefined ? {} : { kid }) }
  })))
  const keyFor = createKeyFinder(contentKeys, checks.typ, maxBytes)
  const fixedClaims = Object.fromEntries(fixedClaimNames.filter((name) => sign[name] !== undefined).map((name) => [name, sign[name]]))
  const cache = createVerifiedCache<T>(cacheSize)
  // Tokens being decrypted: requests that bring one at the same time share its one decryption.
  const pending = new Map<string, Promise<T | InvalidToken>>()

  return {
    async sign (claims) {
      const { key, header } = signingKeyOf(contentKeys)
      const plaintext = Buffer.from(JSON.stringify({ ...claims, ...fixedClaims }))
      return await new CompactEncrypt(plaintext).setProtectedHeader(header).encrypt(key)
    },
    verify (token) {
      const known = cache.get(token)
      if (known !== undefined) return known
      const underway = pending.get(token)
      if (underway !== undefined) return underway
      const key = keyFor(token)
      if (isInvalidToken(key)) return key
      const decryption = decrypted(token, key, checks, admit).then((result) => {
        if (!isInvalidToken(result)) cache.add(token, result)
        return result
      }).finally(() => pending.delete(token))
      pending.set(detached(token), decryption)
      return decryption
    }
  }
}

/** What finds the key of a token that may be one of ours, or says why it cannot be one: no decryption yet. */
function createKeyFinder (contentKeys: ContentKey[], typ: string | undefined, maxBytes: number): (token: string) => ContentKey | InvalidToken {
  const single = contentKeys.length === 1 && contentKeys[0].kid === undefined ? contentKeys[0] : undefined
  const byKid = new Map(contentKeys.map((key) => [key.kid, key]))
  const knownHeaders = new Map<string, ContentKey>()

  /** The key a protected header names, or why it names none. */
  function keyOf (headerSegment: string): ContentKey | InvalidToken {
    const header = headerOf(headerSegment)
    if (typeof header === 'string') return new TokenInvalidError(header)
    const unknown = Object.keys(header).find((name) => !knownHeaderNames.has(name))
    if (unknown !== undefined) return new TokenInvalidError(`header ${describe(unknown)} is not accepted`)
    if (header.alg !== 'dir') return new TokenInvalidError(`algorithm ${describe(header.alg)} is not dir`)
    if (header.enc !== 'A256GCM') return new TokenInvalidError(`encryption ${describe(header.enc)} is not A256GCM`)
    // Never a fallback: a single secret has no kid, and in a list an unknown or missing kid names no key.
    const key = single !== undefined ? (header.kid === undefined ? single : undefined) : typeof header.kid === 'string' ? byKid.get(header.kid) : undefined
    if (key === undefined) return new TokenInvalidError(`no key for kid ${describe(header.kid)}`)
    if (typ !== undefined && (typeof header.typ !== 'string' || normalizedTyp(header.typ) !== typ)) return new TokenInvalidError('Invalid typ.')
    return key
  }

  return (token) => {
    if (token.length > maxBytes) return new TokenInvalidError(`longer than ${maxBytes} bytes`)
    if (!compactJwe.test(token)) return new TokenInvalidError('not an encrypted token (JWE compact serialization, alg dir)')
    const headerEnd = token.indexOf('.')
    const tagStart = token.lastIndexOf('.') + 1
    // One spelling per token: unused low bits in a segment's last character would give copies of it other strings.
    if (!isCanonicalBase64url(token.slice(0, headerEnd), 0) || !isCanonicalBase64url(token.slice(0, tagStart - 1), headerEnd + 19) ||
      !isCanonicalBase64url(token, tagStart)) {
      return new TokenInvalidError('a segment is not canonical base64url')
    }
    const headerSegment = token.slice(0, headerEnd)
    const knownKey = knownHeaders.get(headerSegment)
    if (knownKey !== undefined) return knownKey
    const key = keyOf(headerSegment)
    // A pure function of the header text, remembered for the few headers of our keys.
    if (!isInvalidToken(key) && knownHeaders.size < maxKnownHeaders) knownHeaders.set(detached(headerSegment), key)
    return key
  }
}

/** Decrypts a token that passed every check, then checks and admits its claims. */
async function decrypted<T> (token: string, { key }: ContentKey, checks: ClaimChecks, admit: Admit<T>): Promise<T | InvalidToken> {
  let plaintext: Uint8Array
  try {
    ({ plaintext } = await compactDecrypt(token, key, decryptOptions))
  } catch (error) {
    return new TokenInvalidError((error as Error).message)
  }
  const payload = checkedPayload(checks, Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength).toString())
  if (isInvalidToken(payload)) return payload
  if (hasPrototypeKey(payload)) return new TokenInvalidError('the payload has a __proto__, constructor or prototype key')
  return admitted(admit, payload)
}
