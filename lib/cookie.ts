// Cookie attributes of the token cookie, and the Set-Cookie lines that set or clear it. A token too long for one
// cookie is split over chunk cookies `<name>.0`, `<name>.1`, … where `maxChunks` allows.
import type { FastifyRequest } from 'fastify'
import { TokenTooLargeError } from './errors.js'
import type { ResolvedCookieAttributes } from './options.js'
import { absoluteExpiresAt, cookieMaxAge, type Lifetime, type TimeClaims } from './policy.js'
import type { CarriedCookies } from './request-token.js'

/** RFC 6265 §6.1: browsers keep a cookie (name, value and attributes) of at most 4096 bytes. */
export const maxSetCookieBytes = 4096

type SerializeCookie = (name: string, value: string, options: Record<string, unknown>) => string

export interface CookieWriter {
  /**
   * The lines that set the token cookie, or its chunks, and its expiry hint, and expire the token cookies `carried`
   * that the new ones do not replace; throws `FST_TOKEN_COOKIE_TOO_LARGE` past `maxChunks` cookies of 4096 bytes.
   */
  set: (request: FastifyRequest, token: string, lifetime: Lifetime, claims: TimeClaims, carried: CarriedCookies) => string[]
  /** The lines that expire the token cookies `carried` (and the expiry hint) with the Path and Domain they were set with. */
  clear: (request: FastifyRequest, carried: CarriedCookies) => readonly string[]
}

export interface CookieWriterOptions {
  /** Also write the readable `<name>.exp` cookie. */
  expiryHint: boolean
  /** How many cookies one token may be split over. */
  maxChunks: number
}

/** The readable cookie beside the token cookie that tells scripts when the session ends. */
export function expiryHintName (cookieName: string): string {
  return `${cookieName}.exp`
}

/** The name of chunk `index` of a token too long for one cookie. */
export function chunkName (cookieName: string, index: number): string {
  return `${cookieName}.${index}`
}

// `e=…&a=…` goes on the wire as written, so `new URLSearchParams(value)` reads it.
const asWritten = (value: string): string => value
const epoch = new Date(0)
// A request may carry chunk names `.0` to `.9` whatever `maxChunks` is: each can be cleared.
const chunkNames = 10

/** Everything of a Set-Cookie line but the name, value and Max-Age, for one value of `Secure`. */
interface Formatted {
  /** What follows `name=value` (an empty value formats as nothing). */
  attributes: string
  hintAttributes: string
  /** The line that expires `<name>`; the one for the expiry hint, if written. */
  clearPlain: string
  clearHint: string | undefined
  /** The lines that expire chunk names `.0` to `.9` (none with maxChunks 1). */
  clearChunks: string[]
  /** The lines that expire `<name>` and the hint: a request that carried `<name>` alone. */
  clearPlainOnly: readonly string[]
}

/**
 * Everything but the value and Max-Age of a Set-Cookie line is the same for every response, so @fastify/cookie's
 * serializer formats it once, here, for each value `Secure` can take; a response only joins the parts:
 * `name=value; Max-Age=…` and the attributes, in the order the serializer writes them.
 */
export function createCookieWriter (
  name: string, attributes: ResolvedCookieAttributes, { expiryHint, maxChunks }: CookieWriterOptions, serialize: SerializeCookie,
  warnInsecure: (request: FastifyRequest) => void
): CookieWriter {
  const hintName = expiryHintName(name)
  const base = {
    httpOnly: attributes.httpOnly,
    sameSite: attributes.sameSite,
    path: attributes.path,
    domain: attributes.domain,
    partitioned: attributes.partitioned,
    priority: attributes.priority
  }
  const formatted = [false, true].map((secure) => format(name, { ...base, secure }, expiryHint, maxChunks, serialize))
  // 'auto' writes `; Secure` over HTTPS only; the size limit counts it either way.
  const formattedFor = (request: FastifyRequest): Formatted =>
    formatted[Number(attributes.secure === 'auto' ? request.protocol === 'https' : attributes.secure)]
  const longestAttributes = formatted[Number(attributes.secure !== false)].attributes
  let warned = false

  return {
    set (request, token, lifetime, claims, carried) {
      const maxAge = cookieMaxAge(lifetime, claims.exp, claims.iat)
      const maxAgeAttribute = maxAge === undefined ? '' : `; Max-Age=${maxAge}`
      // Tokens are base64url and dots, and the attributes ASCII: one byte a character.
      const fixedBytes = maxAgeAttribute.length + longestAttributes.length
      const bytes = name.length + 1 + token.length + fixedBytes
      const count = bytes <= maxSetCookieBytes ? 1 : chunkCount(token.length, maxSetCookieBytes - fixedBytes - chunkName(name, 0).length - 1)
      if (count > maxChunks) throw new TokenTooLargeError(bytes)
      // Browsers drop a Secure cookie sent over plain http (loopback hosts aside), and say nothing: this instance does, once.
      if (!warned && attributes.secure === true && request.protocol === 'http' && !isLoopback(request.hostname)) {
        warned = true
        warnInsecure(request)
      }
      const lines = formattedFor(request)
      const written = tokenLines(name, token, count, `${maxAgeAttribute}${lines.attributes}`)
      if (expiryHint) written.push(`${hintName}=e=${claims.exp}&a=${absoluteExpiresAt(lifetime, claims)}${maxAgeAttribute}${lines.hintAttributes}`)
      return clearStale(written, carried, count, lines)
    },
    clear (request, carried) {
      const lines = formattedFor(request)
      if (carried.plain && carried.chunks.length === 0) return lines.clearPlainOnly
      const cleared = carried.chunks.map((index) => lines.clearChunks[index])
      if (carried.plain) cleared.unshift(lines.clearPlain)
      if (lines.clearHint !== undefined) cleared.push(lines.clearHint)
      return cleared
    }
  }
}

/** How many chunks of at most `capacity` characters a token of `length` needs; more than any limit when none fits. */
function chunkCount (length: number, capacity: number): number {
  return capacity <= 0 ? Infinity : Math.ceil(length / capacity)
}

/** The parts of the lines for one set of attributes (one value of `Secure`), formatted by the serializer. */
function format (name: string, options: Record<string, unknown>, expiryHint: boolean, maxChunks: number, serialize: SerializeCookie): Formatted {
  const hintName = expiryHintName(name)
  const hintOptions = { ...options, httpOnly: false, encode: asWritten }
  const cleared = { ...options, maxAge: 0, expires: epoch }
  const clearPlain = serialize(name, '', cleared)
  const clearHint = expiryHint ? serialize(hintName, '', { ...hintOptions, maxAge: 0, expires: epoch }) : undefined
  return {
    attributes: serialize(name, '', options).slice(name.length + 1),
    hintAttributes: serialize(hintName, '', hintOptions).slice(hintName.length + 1),
    clearPlain,
    clearHint,
    // Chunks are never read with maxChunks 1: their names are another app's, not cleared.
    clearChunks: maxChunks === 1 ? [] : Array.from({ length: chunkNames }, (_, index) => serialize(chunkName(name, index), '', cleared)),
    clearPlainOnly: clearHint === undefined ? [clearPlain] : [clearPlain, clearHint]
  }
}

/** The Set-Cookie lines of a token: `<name>` alone, or `count` chunks whose lengths differ by one at most. */
function tokenLines (name: string, token: string, count: number, attributes: string): string[] {
  if (count === 1) return [`${name}=${token}${attributes}`]
  const at = (index: number): number => Math.floor(index * token.length / count)
  return Array.from({ length: count }, (_, index) => `${chunkName(name, index)}=${token.slice(at(index), at(index + 1))}${attributes}`)
}

/**
 * Adds to `written` the lines that expire what the request carried and a token in `count` cookies does not
 * overwrite: chunks past the last one written (every one for a token in one cookie), and for a chunked token
 * `<name>` itself, always (a request with a Bearer token left the cookie unread).
 */
function clearStale (written: string[], carried: CarriedCookies, count: number, lines: Formatted): string[] {
  const firstStale = count === 1 ? 0 : count
  for (const index of carried.chunks) if (index >= firstStale) written.push(lines.clearChunks[index])
  if (count > 1) written.push(lines.clearPlain)
  return written
}

/** Hosts on which browsers keep Secure cookies over plain http. */
function isLoopback (hostname: string): boolean {
  return hostname === 'localhost' || hostname.endsWith('.localhost') || hostname === '[::1]' || hostname === '::1' || /^127\.\d+\.\d+\.\d+$/.test(hostname)
}
