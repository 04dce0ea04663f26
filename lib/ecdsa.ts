// ECDSA signatures have two valid forms, (r, s) and (r, n − s), so anyone can respell a token's signature.
// The plugin signs and accepts only the low form, s ≤ n / 2 (as Bitcoin's BIP 62 and libsecp256k1 do), so that
// each token has exactly one accepted spelling.
import type { Algorithm } from '../types/index.js'

/** The order n of each curve's base point (SEC 2), and the length of r and of s in a JWS signature. */
const curves: Partial<Record<Algorithm, { order: bigint, size: number }>> = {
  ES256: { order: 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551n, size: 32 },
  ES384: { order: 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973n, size: 48 },
  ES512: {
    order: 0x01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409n,
    size: 66
  }
}

export function isEcdsa (algorithm: Algorithm): boolean {
  return curves[algorithm] !== undefined
}

/** Whether the JWS signature `r ‖ s` (base64url) is in low-S form; any other length is not. */
export function isLowS (algorithm: Algorithm, signature: string): boolean {
  const curve = curves[algorithm]
  if (curve === undefined) return true
  const bytes = Buffer.from(signature, 'base64url')
  if (bytes.length !== 2 * curve.size) return false
  return toBigInt(bytes.subarray(curve.size)) <= curve.order / 2n
}

/** The token with its ECDSA signature put in low-S form: the same signature, the one accepted spelling. */
export function withLowS (algorithm: Algorithm, token: string): string {
  const curve = curves[algorithm]
  const dot = token.lastIndexOf('.')
  if (curve === undefined || isLowS(algorithm, token.slice(dot + 1))) return token
  const bytes = Buffer.from(token.slice(dot + 1), 'base64url')
  const s = curve.order - toBigInt(bytes.subarray(curve.size))
  Buffer.from(s.toString(16).padStart(2 * curve.size, '0'), 'hex').copy(bytes, curve.size)
  return `${token.slice(0, dot)}.${bytes.toString('base64url')}`
}

function toBigInt (bytes: Buffer): bigint {
  return BigInt(`0x${bytes.toString('hex')}`)
}
