// Responses that shared caches (CDNs, proxies) may store must never carry a session cookie to another user.

type HeaderValue = string | number | string[] | undefined
/** What is read of a response: Fastify's reply has both. */
export interface CachedResponse {
  statusCode: number
  getHeader: (name: string) => HeaderValue
}

/** Headers that tell one kind of shared cache how long to keep a response, over Cache-Control (RFC 9213, nginx). */
export const sharedCacheHeaders = ['cdn-cache-control', 'surrogate-control', 'x-accel-expires'] as const

function directivesOf (value: string | number | string[]): string[] {
  // An array's String() joins it with commas, as the header's lines would be.
  return String(value).split(',').map((directive) => directive.trim()).filter((directive) => directive !== '')
}

const named = (name: string) => (directive: string): boolean => directive.toLowerCase().split('=')[0].trim() === name

/** Whether a header of `sharedCacheHeaders` lets a cache keep the response. */
function keptBy (name: (typeof sharedCacheHeaders)[number], value: HeaderValue): boolean {
  if (value === undefined) return false
  if (name === 'x-accel-expires') return !['0', 'off'].includes(String(value).trim().toLowerCase())
  const directives = directivesOf(value)
  return !directives.some(named('no-store')) && !directives.some(named('private'))
}

/**
 * Whether a response is one a shared cache may store and hand to others: a 304 (it refreshes what a cache holds),
 * one the app marked `public` or gave an `s-maxage`, or one with a CDN's own caching header. A renewal, or the
 * clearing of a refused cookie, waits for another response.
 */
export function sharedCacheable (response: CachedResponse): boolean {
  if (response.statusCode === 304) return true
  const cacheControl = response.getHeader('cache-control')
  if (cacheControl !== undefined) {
    const directives = directivesOf(cacheControl)
    if (directives.some(named('public')) || directives.some(named('s-maxage'))) return true
  }
  for (const name of sharedCacheHeaders) if (keptBy(name, response.getHeader(name))) return true
  return false
}

/** `Cache-Control` for a response that sets the cookie: never `public`, and `private` unless `private` or `no-store`. */
export function privateCacheControl (cacheControl: HeaderValue): string {
  if (cacheControl === undefined) return 'private'
  const directives = directivesOf(cacheControl).filter((directive) => !named('public')(directive))
  if (!directives.some(named('private')) && !directives.some(named('no-store'))) directives.push('private')
  return directives.join(', ')
}
