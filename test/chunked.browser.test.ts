// A chunked token in real Chromium: the browser keeps every chunk, sends them back, and is left with exactly the
// cookies the last response meant through renewals and updates that change the chunk count, and after a logout.
// Needs Debian's Chromium (`apt-get install -y chromium`) or CHROMIUM_PATH; skipped without it.
import type { BrowserContext, Page } from 'playwright-core'
import t from 'tap'
import { claimsOf } from './helpers/app.js'
import { chromiumPath, fetchInPage, hasChromium, launchBrowser, nowSeconds, sleepUntil, type ApiAnswer } from './helpers/browser.js'
import { buildChunkApp } from './helpers/chunks.js'

const maxAge = 60

/** The token cookies in the browser's jar, by name (the expiry hint is off here). */
async function tokenCookies (context: BrowserContext): Promise<Map<string, { value: string, httpOnly: boolean, secure: boolean, sameSite: string, path: string, expires: number }>> {
  const cookies = (await context.cookies()).filter((cookie) => cookie.name === 'token' || cookie.name.startsWith('token.'))
  return new Map(cookies.map((cookie) => [cookie.name, cookie]))
}

async function tokenOf (context: BrowserContext): Promise<string> {
  const cookies = await tokenCookies(context)
  const plain = cookies.get('token')?.value
  if (plain !== undefined) return plain
  return [0, 1, 2].map((index) => cookies.get(`token.${index}`)?.value ?? '').join('')
}

async function post (page: Page, path: string, body: object): Promise<ApiAnswer> {
  return await fetchInPage(page, path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
}

if (!hasChromium) {
  t.plan(0, `browser tests skipped: no Chromium at ${chromiumPath}; apt-get install -y chromium, or set CHROMIUM_PATH`)
} else {
  // renewAfter 0: a renewal is due once the second of the token's iat has passed, so no wait is longer than a second.
  const app = await buildChunkApp(t, { maxChunks: 3, maxAge: `${maxAge}s`, renewAfter: 0 })
  app.get('/', async (request, reply) => reply.type('text/html; charset=utf-8').send('<!doctype html><title>chunks</title>'))
  await app.listen({ host: '127.0.0.1', port: 0 })
  const origin = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const browser = await launchBrowser(t)

  t.test('a chunked login survives renewals and re-chunking updates; a logout leaves no chunk behind', async (t) => {
    const context = await browser.newContext()
    t.teardown(() => context.close())
    const page = await context.newPage()
    await page.goto(origin)

    /** The token cookies the browser holds, and that they authenticate with the expected claims. */
    const holds = async (names: string[], pad: number, label: string): Promise<string> => {
      const cookies = await tokenCookies(context)
      t.same([...cookies.keys()].sort(), names, `${label}: the browser holds ${names.join(', ')}`)
      for (const [name, cookie] of cookies) {
        t.match(cookie, { httpOnly: true, secure: true, sameSite: 'Lax', path: '/' }, `${label}: ${name} has the cookie's attributes`)
        t.ok(cookie.expires > nowSeconds() + maxAge - 5 && cookie.expires <= nowSeconds() + maxAge + 1, `${label}: ${name} lives maxAge`)
      }
      const me = await fetchInPage(page, '/me')
      t.match(me, { status: 200, body: { sub: 'alice', pad } }, `${label}: the browser's cookies authenticate`)
      return await tokenOf(context)
    }
    const renew = async (token: string): Promise<void> => {
      await sleepUntil((claimsOf(token).iat as number) + 1)
      t.equal((await fetchInPage(page, '/me')).status, 200, 'a request once the renewal is due')
    }

    t.equal((await post(page, '/login', { pad: 7000 })).status, 200, 'login')
    const login = await holds(['token.0', 'token.1', 'token.2'], 7000, 'login')
    t.ok(login.length > 8192, `a token of ${login.length} bytes in three cookies`)

    await renew(login)
    const renewed = await holds(['token.0', 'token.1', 'token.2'], 7000, 'renewed')
    t.not(renewed, login, 'the renewal replaced every chunk')
    t.equal(claimsOf(renewed).sid, claimsOf(login).sid, 'same session')

    t.equal((await post(page, '/update', { pad: 4000 })).status, 200, 'claims that shrink')
    const two = await holds(['token.0', 'token.1'], 4000, 'two chunks')
    await renew(two)
    const twoRenewed = await holds(['token.0', 'token.1'], 4000, 'two chunks renewed')
    t.not(twoRenewed, two)

    t.equal((await post(page, '/update', { pad: 10 })).status, 200, 'claims that fit one cookie')
    await holds(['token'], 10, 'one cookie')
    t.equal((await post(page, '/update', { pad: 7000 })).status, 200, 'claims that grow again')
    const regrown = await holds(['token.0', 'token.1', 'token.2'], 7000, 'three chunks again')
    t.equal(claimsOf(regrown).sid, claimsOf(login).sid, 'still the same session')

    t.equal((await post(page, '/logout', {})).status, 200, 'logout')
    t.same([...(await tokenCookies(context)).keys()], [], 'no token cookie, no chunk left in the jar')
    t.match(await fetchInPage(page, '/me'), { status: 401, body: { code: 'FST_TOKEN_COOKIE_MISSING' } }, 'signed out')
  })
}
