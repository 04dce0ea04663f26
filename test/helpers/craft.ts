// Token crafting for the hardening tests: node:crypto over base64url, never the library under test.
import { constants, createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, sign as cryptoSign, type KeyLike } from 'node:crypto'

/** JSON text used as is (duplicate or `__proto__` keys, non-JSON), instead of `JSON.stringify(value)`. */
export class RawJson {
  readonly text: string
  constructor (text: string) {
    this.text = text
  }
}

export function raw (text: string): RawJson {
  return new RawJson(text)
}

export function b64url (input: string | Buffer): string {
  return Buffer.from(input).toString('base64url')
}

/** base64url of the JSON text of `value` (or of a `raw()` text as is). */
export function encodeSegment (value: unknown): string {
  return b64url(value instanceof RawJson ? value.text : JSON.stringify(value))
}

/** A signing key: an HMAC secret for HS*, a private key (PEM or KeyObject) for RS*, PS*, ES* and EdDSA. */
export type SigningKey = string | Buffer | KeyLike

const digests: Record<string, string> = { 256: 'sha256', 384: 'sha384', 512: 'sha512' }

function digestOf (alg: string): string {
  const digest = digests[alg.slice(2)]
  if (digest === undefined) throw new Error(`craft: no digest for ${alg}`)
  return digest
}

/** The base64url signature of `input` with `alg`; `none` (any spelling) signs nothing. */
export function signInput (input: string, alg: string, key: SigningKey | undefined): string {
  if (alg.toLowerCase() === 'none') return ''
  if (key === undefined) throw new Error(`craft: ${alg} needs a key`)
  const data = Buffer.from(input)
  const family = alg.slice(0, 2)
  if (family === 'HS') return createHmac(digestOf(alg), key as string | Buffer).update(data).digest('base64url')
  if (family === 'RS') return cryptoSign(digestOf(alg), data, key).toString('base64url')
  if (family === 'PS') {
    return cryptoSign(digestOf(alg), data, {
      key: key as string,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: constants.RSA_PSS_SALTLEN_DIGEST
    }).toString('base64url')
  }
  if (family === 'ES') return cryptoSign(digestOf(alg), data, { key: key as string, dsaEncoding: 'ieee-p1363' }).toString('base64url')
  if (alg === 'EdDSA') return cryptoSign(null, data, key).toString('base64url')
  throw new Error(`craft: unknown algorithm ${alg}`)
}

/** Signs the exact text `headerSegment.payloadSegment`, whatever its encoding (padding, odd characters). */
export function signSegments (headerSegment: string, payloadSegment: string, alg: string, key: SigningKey | undefined): string {
  const input = `${headerSegment}.${payloadSegment}`
  return `${input}.${signInput(input, alg, key)}`
}

export interface CraftOptions {
  /** Defaults to `{ alg, typ: 'JWT' }`. */
  header?: unknown
  payload: unknown
  /** Signing key; omitted for `none`. */
  key?: SigningKey
  /** The algorithm actually used to sign; defaults to `header.alg`, else HS256. */
  alg?: string
  /** A signature segment to use instead of the computed one. */
  signature?: string
}

/** `b64url(header).b64url(payload).signature`. */
export function craft ({ header, payload, key, alg, signature }: CraftOptions): string {
  const headerAlg = header !== null && typeof header === 'object' && !(header instanceof RawJson)
    ? (header as Record<string, unknown>).alg
    : undefined
  const algorithm = alg ?? (typeof headerAlg === 'string' ? headerAlg : 'HS256')
  const input = `${encodeSegment(header === undefined ? { alg: algorithm, typ: 'JWT' } : header)}.${encodeSegment(payload)}`
  return `${input}.${signature ?? signInput(input, algorithm, key)}`
}

/** Seconds since epoch, now (the fake clock's now when one is installed). */
export function nowSeconds (): number {
  return Math.floor(Date.now() / 1000)
}

/** Good time claims for a login at `now`: what the plugin's default sliding policy would sign. */
export function timeClaims (now = nowSeconds(), maxAge = 1800): { iat: number, exp: number, auth_time: number } {
  return { iat: now, exp: now + maxAge, auth_time: now }
}

/** The JSON text of good time claims, to splice into a raw payload: `"iat":…,"exp":…,"auth_time":…`. */
export function rawTimeClaims (now = nowSeconds(), maxAge = 1800): string {
  return JSON.stringify(timeClaims(now, maxAge)).slice(1, -1)
}

export interface DecodedToken {
  header: Record<string, unknown>
  payload: Record<string, unknown>
  signature: string
}

/** Decodes (without verifying) a compact JWS, to look at what the plugin signed. */
export function decode (token: string): DecodedToken {
  const [header, payload, signature] = token.split('.')
  return {
    header: JSON.parse(Buffer.from(header, 'base64url').toString()),
    payload: JSON.parse(Buffer.from(payload, 'base64url').toString()),
    signature
  }
}

/** The AES-256-GCM key of `encrypt: true` for `secret`, as documented: HKDF-SHA256, no salt, its fixed info string. */
export function jweKeyOf (secret: string | Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'fastify-token-cookie JWE A256GCM', 32))
}

export interface CraftJweOptions {
  /** The protected header (or a `raw()` text); defaults to `{ alg: 'dir', enc: 'A256GCM', typ: 'JWT' }`. */
  header?: unknown
  /** The plaintext: JSON of a value, a `raw()` text, or bytes as they are. */
  plaintext: unknown
  /** AES-256-GCM key. */
  key: Buffer
  /** The encrypted-key segment, empty for `dir`. */
  encryptedKey?: string
}

/** A JWE in compact form: AES-256-GCM under `key`, with the header segment as additional authenticated data. */
export function craftJwe ({ header, plaintext, key, encryptedKey = '' }: CraftJweOptions): string {
  const headerSegment = encodeSegment(header === undefined ? { alg: 'dir', enc: 'A256GCM', typ: 'JWT' } : header)
  const bytes = Buffer.isBuffer(plaintext) ? plaintext : Buffer.from(plaintext instanceof RawJson ? plaintext.text : JSON.stringify(plaintext))
  return sealJwe(headerSegment, bytes, key, randomBytes(12), encryptedKey)
}

/** `headerSegment.encryptedKey.iv.ciphertext.tag`: AES-GCM (256 or 128 by the key's length), the exact header segment as AAD. */
export function sealJwe (headerSegment: string, plaintext: Buffer, key: Buffer, iv: Buffer, encryptedKey = ''): string {
  const cipher = createCipheriv(`aes-${key.length * 8}-gcm` as 'aes-256-gcm', key, iv)
  cipher.setAAD(Buffer.from(headerSegment))
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return [headerSegment, encryptedKey, b64url(iv), b64url(ciphertext), b64url(cipher.getAuthTag())].join('.')
}

/** The plaintext of a compact JWE under an AES-256-GCM `key`; throws unless its header is `dir`/`A256GCM` and its tag verifies. */
export function openJwe (token: string, key: Buffer): Buffer {
  const segments = token.split('.')
  if (segments.length !== 5) throw new Error('openJwe: not five segments')
  const [headerSegment, , iv, ciphertext, tag] = segments
  const header = JSON.parse(Buffer.from(headerSegment, 'base64url').toString())
  if (header.alg !== 'dir' || header.enc !== 'A256GCM') throw new Error(`openJwe: ${String(header.alg)}/${String(header.enc)}`)
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'), { authTagLength: 16 })
  decipher.setAAD(Buffer.from(headerSegment))
  decipher.setAuthTag(Buffer.from(tag, 'base64url'))
  return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()])
}
