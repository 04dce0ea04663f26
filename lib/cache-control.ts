// Responses that shared caches (CDNs, proxies) may store must never carry a session cookie to another user.

type HeaderValue = string | number | string[] | undefined

function directivesOf (value: string | number | string[]): string[] {
  // An array's String() joins it with commas, as the header's lines would be.
  return String(value).split(',').map((directive) => directive.trim()).filter((directive) => directive !== '')
}

const named = (name: string) => (directive: string): boolean => directive.toLowerCase().split('=')[0].trim() === name

/**
 * Whether a response is one a shared cache may store and hand to others: a 304 (it refreshes what a cache holds)
 * or one the app marked `public` or gave an `s-maxage`. A renewal, or the clearing of a refused cookie, waits for
 * another response.
 */
export function sharedCacheable (statusCode: number, cacheControl: HeaderValue): boolean {
  if (statusCode === 304) return true
  if (cacheControl === undefined) return false
  const directives = directivesOf(cacheControl)
  return directives.some(named('public')) || directives.some(named('s-maxage'))
}

/** `Cache-Control` for a response that sets the cookie: never `public`, and `private` unless `private` or `no-store`. */
export function privateCacheControl (cacheControl: HeaderValue): string {
  if (cacheControl === undefined) return 'private'
  const directives = directivesOf(cacheControl).filter((directive) => !named('public')(directive))
  if (!directives.some(named('private')) && !directives.some(named('no-store'))) directives.push('private')
  return directives.join(', ')
}
