// The cross-site request guard alone: a pure function of the request's method, headers, protocol and host.
import { test } from 'tap'
import { crossSiteAllowed, normaliseOrigin, resolveCsrf, type GuardedRequest } from '../lib/csrf.js'

const on = resolveCsrf(undefined)
const request = (method: string, headers: GuardedRequest['headers'] = {}): GuardedRequest => ({ method, headers, protocol: 'https', host: 'app.example' })

test('safe methods pass; unsafe ones need this site', async (t) => {
  for (const method of ['GET', 'HEAD', 'OPTIONS']) t.ok(crossSiteAllowed(on, request(method, { 'sec-fetch-site': 'cross-site' })), method)
  t.notOk(crossSiteAllowed(on, request('POST', { 'sec-fetch-site': 'cross-site' })), 'cross-site POST')
  t.notOk(crossSiteAllowed(on, request('POST', { 'sec-fetch-site': 'same-site' })), 'same-site is not same-origin')
  t.ok(crossSiteAllowed(on, request('POST', { 'sec-fetch-site': 'same-origin' })), 'same-origin')
  t.ok(crossSiteAllowed(on, request('POST', { 'sec-fetch-site': 'none' })), 'typed by the user')
})

test('without fetch metadata: an Origin, if any, must be this one', async (t) => {
  t.ok(crossSiteAllowed(on, request('POST')), 'no Origin: not a browser form')
  t.ok(crossSiteAllowed(on, request('POST', { origin: 'https://app.example' })), 'our origin')
  t.ok(crossSiteAllowed(on, request('POST', { origin: 'https://app.example:443' })), 'our origin, default port spelled out')
  t.notOk(crossSiteAllowed(on, request('POST', { origin: 'https://evil.example' })), 'another origin')
  t.notOk(crossSiteAllowed(on, request('POST', { origin: 'null' })), 'an opaque origin')
})

test('trusted origins pass before fetch metadata; csrf: false lets everything through', async (t) => {
  const trusted = resolveCsrf({ trustedOrigins: ['https://admin.example:443'] })
  t.ok(crossSiteAllowed(trusted, request('POST', { origin: 'https://admin.example', 'sec-fetch-site': 'cross-site' })))
  t.notOk(crossSiteAllowed(trusted, request('POST', { origin: 'https://other.example', 'sec-fetch-site': 'cross-site' })))
  t.ok(crossSiteAllowed(resolveCsrf(false), request('POST', { origin: 'https://evil.example' })))
})

test('normaliseOrigin: scheme, host and a non-default port, nothing else', async (t) => {
  t.equal(normaliseOrigin('HTTPS://App.Example:443'), 'https://app.example')
  t.equal(normaliseOrigin('http://localhost:3001'), 'http://localhost:3001')
  for (const bad of ['app.example', 'https://app.example/', 'https://app.example/path', 'https://u@app.example', 'null', 'https://app.example?q']) {
    t.equal(normaliseOrigin(bad), undefined, bad)
  }
})

test('resolveCsrf refuses what is not an origin list, naming the value by its type', async (t) => {
  t.throws(() => resolveCsrf([] as never), { code: 'FST_TOKEN_COOKIE_OPTIONS', message: /csrf must be false, true or/ })
  t.throws(() => resolveCsrf({ trustedOrigins: [{ toString: () => 'https://a.example' }] } as never), { message: /an object is not an origin/ })
  t.throws(() => resolveCsrf({ trustedOrigins: [null] } as never), { message: /null is not an origin/ })
  t.throws(() => resolveCsrf({ trustedOrigins: [`https://a.example/${'p'.repeat(100)}`] } as never), { message: /"https:\/\/a\.example\/p{46}…" is not an origin/ }, 'a long value is cut short')
})
