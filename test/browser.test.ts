// The demo in real Chromium: what a browser, not inject(), decides about the token cookie.
// Needs Debian's Chromium (`apt-get install -y chromium`) or CHROMIUM_PATH; skipped without it.
// The lifetime tests use a demo with short lifetimes (6 s idle, renewal due after 1.5 s, 15 s absolute):
// there the waiting is real, and those three run side by side; everything else waits for conditions.
import { mkdir } from 'node:fs/promises'
import type { Page } from 'playwright-core'
import t from 'tap'
import {
  chromiumPath, cookieNamed, fetchInPage, firstRefusal, hasChromium, launchBrowser, launchProfile, nowSeconds, overflow,
  pageHint, loadDemo, parseHint, runDemo, signIn, sleepUntil, startDemo, startOtherOrigin, userDataDir, type ApiAnswer, type Hint
} from './helpers/browser.js'

const idle = 6
const absolute = 15
const renewAfter = 0.25

if (!hasChromium) {
  t.plan(0, `browser tests skipped: no Chromium at ${chromiumPath}; apt-get install -y chromium, or set CHROMIUM_PATH`)
} else {
  // The demo as `npm start` runs it (60 s idle, 5 min absolute), remember me 1 h; and one with short
  // lifetimes for the tests that watch a session slide and end.
  const origin = await startDemo(t, { remember: '1h' })
  const short = await startDemo(t, { idle: `${idle}s`, absolute: `${absolute}s`, remember: '1h', renewAfter })
  const browser = await launchBrowser(t)
  t.comment(`Chromium ${browser.version()}, demo at ${origin}, short lifetimes at ${short}`)
  // The three lifetime tests run side by side (buffered, each in its own browser context) so their real
  // waits overlap; the others run one at a time.
  t.jobs = 3
  const together = { buffered: true }
  const alone = { buffered: false }

  /** A fresh browser context (its own cookie jar and storage), closed when the test ends. */
  async function freshPage (tt: { teardown: (fn: () => unknown) => void }) {
    const context = await browser.newContext()
    tt.teardown(() => context.close())
    return { context, page: await context.newPage() }
  }

  t.test('the token cookie is invisible to document.cookie but sent with requests; token.exp is readable', alone, async (t) => {
    const { context, page } = await freshPage(t)
    await signIn(page, origin)

    const names = await page.evaluate(() => document.cookie.split('; ').map((cookie) => cookie.split('=')[0]))
    t.same(names, ['token.exp'], 'document.cookie holds only the expiry hint')
    t.match(await page.textContent('#document-cookie'), /^token\.exp=e=\d+&a=\d+$/, 'the page shows what it can see')

    const token = await cookieNamed(context, 'token')
    const hint = await cookieNamed(context, 'token.exp')
    t.ok(token, 'the browser keeps the token cookie')
    t.match(token, { httpOnly: true, secure: true, sameSite: 'Lax', path: '/', expires: -1 }, 'httpOnly, Secure (kept over http on loopback), Lax, browser-session')
    t.match(hint, { httpOnly: false, secure: true, sameSite: 'Lax', path: '/', expires: -1, domain: token!.domain }, 'the hint has the same attributes, minus httpOnly')
    const { e, a } = parseHint(hint!.value)
    t.ok(e > nowSeconds() && a >= e, 'e and a are seconds since epoch, a >= e')

    // Sent with requests: the browser attaches it, and the protected API answers.
    const [request] = await Promise.all([
      page.waitForRequest(`${origin}/api/me`),
      page.click('#call-api')
    ])
    const headers = await request.allHeaders()
    t.match(headers.cookie, new RegExp(`(^|; )token=${token!.value.replace(/\./g, '\\.')}(;|$)`), 'the request carried the token cookie')
    t.equal((await request.response())?.status(), 200, 'the protected API answered 200')
    await page.waitForSelector('#log .status.ok >> text=200')
    t.match(await page.textContent('#log li:first-child .note'), /^OK; renewal not due yet \(in \d+ s\)$/, 'a sliding login: renewal comes later')

    // A script can neither read nor overwrite it.
    const current = (await cookieNamed(context, 'token'))!.value
    await page.evaluate(() => { document.cookie = 'token=forged; path=/' })
    t.equal((await cookieNamed(context, 'token'))?.value, current, 'document.cookie cannot overwrite an httpOnly cookie')
    t.equal((await fetchInPage(page, '/api/me')).status, 200, 'still signed in')
  })

  t.test('a browser-session login ends when the browser closes; a remember-me login survives', alone, async (t) => {
    /** Signs in, closes the browser, starts it again on the same user-data dir (profile), opens the demo. */
    async function restart (remember: boolean) {
      const dir = await userDataDir(t)
      let profile = await launchProfile(dir)
      const page = profile.pages()[0] ?? await profile.newPage()
      await signIn(page, origin, { remember })
      const before = (await cookieNamed(profile, 'token'))!
      await profile.close()
      profile = await launchProfile(dir)
      t.teardown(() => profile.close())
      const again = profile.pages()[0] ?? await profile.newPage()
      await again.goto(origin)
      await again.waitForSelector('body:not([data-state="loading"])')
      return { before, profile, page: again }
    }
    // Both at once: launching Chromium is what takes time here.
    const [session, remembered] = await Promise.all([restart(false), restart(true)])

    t.equal(session.before.expires, -1, 'without remember me: a browser-session cookie')
    t.equal(await session.page.getAttribute('body', 'data-state'), 'signed-out', 'signed out after the restart')
    t.equal(await cookieNamed(session.profile, 'token'), undefined, 'the session cookie is gone')
    t.equal(await cookieNamed(session.profile, 'token.exp'), undefined, 'the hint (also a session cookie) too')
    t.match(await fetchInPage(session.page, '/api/me'), { status: 401, body: { code: 'FST_TOKEN_COOKIE_MISSING' } })

    t.ok(remembered.before.expires > nowSeconds() + 3500, 'remember me: a persistent cookie (Max-Age 1 h here)')
    t.equal(await remembered.page.getAttribute('body', 'data-state'), 'signed-in', 'still signed in after the restart')
    t.equal((await cookieNamed(remembered.profile, 'token'))?.value, remembered.before.value, 'the cookie survived')
    t.ok(await cookieNamed(remembered.profile, 'token.exp'), 'and so did the hint')
    t.match(await fetchInPage(remembered.page, '/api/me'), { status: 200, body: { user: { username: 'alice' }, policy: 'persistent' } })
  })

  t.test('a sliding session renews after the threshold, then expires after the idle window without activity', together, async (t) => {
    const { context, page } = await freshPage(t)
    await signIn(page, short)
    const login = (await pageHint(page))!
    const iat = login.e - idle
    t.equal(login.a, iat + absolute, 'the cap is login time + absolute')

    // Before the threshold a request does not renew (on a slow machine the answer may come after it, and renew).
    const early = await fetchInPage(page, '/api/me')
    const unchanged = early.body.renewed === false && early.body.expiry.expiresAt === login.e
    t.ok(early.status === 200 && (unchanged || early.at >= iat + idle * renewAfter), 'not renewed before the threshold')

    // Past the threshold of the current token, a click on the page's API button renews: token.exp moves forward.
    const before = (await pageHint(page))!
    const tokenBefore = (await cookieNamed(context, 'token'))!.value
    await sleepUntil(before.e - idle + idle * renewAfter)
    await page.click('#call-api')
    await page.waitForFunction((e) => /token\.exp=e=(\d+)/.exec(document.cookie)?.[1] !== String(e), before.e)
    const renewed = (await pageHint(page))!
    t.ok(renewed.e > before.e, `renewed: e moved from ${before.e} to ${renewed.e}`)
    t.equal(renewed.a, login.a, 'the absolute cap did not move')
    // The new iat is the renewal time in whole seconds, rounded down.
    t.ok(renewed.e - idle >= Math.floor(before.e - idle + idle * renewAfter), 'the new token was issued at or after the threshold')
    t.not((await cookieNamed(context, 'token'))!.value, tokenBefore, 'the token cookie was re-issued')
    await page.waitForSelector('#log li:first-child .note >> text=Session renewed')
    // The page's countdown now runs to the new expiry.
    await page.waitForSelector(`#idle-countdown[data-until="${renewed.e}"]`)

    // No activity for the idle window: the page notices from the hint and asks the server (a poll, which
    // extends nothing); the server, from the token, says expired and clears the cookies.
    const refused = firstRefusal(page, short, (idle + 30) * 1000)
    await sleepUntil(renewed.e)
    await page.waitForSelector('body[data-state="signed-out"]')
    t.match(await page.textContent('#message'), new RegExp(`expired after ${idle} s without activity`), 'the page says why')
    t.match(await refused, { path: '/api/poll', body: { code: 'FST_TOKEN_COOKIE_EXPIRED' } }, 'the page asked; the server: expired')
    await page.waitForSelector('#document-cookie >> text=(empty)')
    t.pass('the page no longer shows the old token.exp')
    t.equal(await cookieNamed(context, 'token'), undefined, 'the 401 cleared the expired cookie')
    t.equal(await cookieNamed(context, 'token.exp'), undefined, 'and the hint')
    t.match(await fetchInPage(page, '/api/me'), { status: 401, body: { code: 'FST_TOKEN_COOKIE_MISSING' } }, 'signed out')
  })

  t.test('a sliding session ends at the absolute cap despite activity', together, async (t) => {
    const { page } = await freshPage(t)
    await signIn(page, short)
    const login = (await pageHint(page))!
    const seen: Hint[] = [login]
    let last: ApiAnswer | undefined
    let answer: ApiAnswer
    const lateAnswers: number[] = []
    // The page watches the hint too, and asks the server once it reaches the cap: the first 401 may be its.
    const refused = firstRefusal(page, short, (absolute + 30) * 1000)
    // Activity every 400 ms, far inside the idle window, until the server says no.
    for (;;) {
      answer = await fetchInPage(page, '/api/me')
      if (answer.status !== 200) break
      last = answer
      // (null if the page has just seen the cap and had the server clear the cookies)
      const hint = await pageHint(page)
      if (hint !== null && hint.e !== seen[seen.length - 1].e) seen.push(hint)
      if (answer.at >= login.a + 1) lateAnswers.push(answer.at)
      if (answer.at > login.a + 2) break
      await new Promise((resolve) => setTimeout(resolve, 400))
    }
    t.same(lateAnswers, [], 'no answer of 200 after the cap')
    const first = await refused
    t.match(first, { body: { code: 'FST_TOKEN_COOKIE_EXPIRED' } }, `ended: expired (answering ${first.path})`)
    t.ok(first.at >= login.a, 'not before the cap')
    t.equal(answer.status, 401, 'and the session stays ended')
    t.ok(last !== undefined && answer.at - last.at < idle / 2, 'while the session was in use')
    t.ok(seen.length >= 3, `renewed along the way: e = ${seen.map((hint) => hint.e).join(', ')}`)
    t.ok(seen.every((hint) => hint.a === login.a && hint.e <= login.a), 'no renewal reached past the cap')
    t.equal(seen[seen.length - 1].e, login.a, 'the last renewal stopped exactly at the cap')
    t.equal(await pageHint(page), null, 'the 401 cleared the hint')
  })

  t.test('the renew: false poll does not extend the session', together, async (t) => {
    const { page } = await freshPage(t)
    await signIn(page, short)
    const login = (await pageHint(page))!
    await sleepUntil(login.e - idle + idle * renewAfter)

    // Past the threshold, where /api/me would renew (the renewal test shows it): the page's poll button.
    const [response] = await Promise.all([
      page.waitForResponse(`${short}/api/poll`),
      page.click('#poll')
    ])
    t.equal(response.status(), 200)
    t.equal(await response.headerValue('set-cookie'), null, 'no Set-Cookie: nothing re-issued')
    t.match(await response.json(), { renewed: false, expiry: { expiresAt: login.e, absoluteExpiresAt: login.a } }, 'tokenExpiry() unchanged')
    t.same(await pageHint(page), login, 'token.exp unchanged')

    // Keep polling: the session still ends at the first exp (the page's own check may be the one refused).
    const refused = firstRefusal(page, short, (idle + 30) * 1000)
    let answer: ApiAnswer
    const extended: number[] = []
    do {
      answer = await fetchInPage(page, '/api/poll')
      if (answer.status === 200) {
        if (answer.body.expiry.expiresAt !== login.e) extended.push(answer.body.expiry.expiresAt)
        await new Promise((resolve) => setTimeout(resolve, 300))
      }
    } while (answer.status === 200)
    t.same(extended, [], 'never extended')
    const first = await refused
    t.match(first, { path: '/api/poll', body: { code: 'FST_TOKEN_COOKIE_EXPIRED' } }, 'expired while polling')
    t.ok(first.at >= login.e, 'at the exp of the login token')
    t.equal(answer.status, 401)
  })

  t.test('a browser clock ahead of the server: the page asks the server, which keeps the session', alone, async (t) => {
    const { context, page } = await freshPage(t)
    // Ten minutes ahead: by this clock the login is over (60 s idle, 5 min cap) as soon as it starts.
    await page.clock.setSystemTime(Date.now() + 10 * 60 * 1000)
    await signIn(page, origin)
    const token = (await cookieNamed(context, 'token'))!.value
    // The page asks (a poll, which extends nothing) and, told the session holds, asks again a second later.
    for (let polls = 0; polls < 2; polls++) {
      const response = await page.waitForResponse(`${origin}/api/poll`)
      t.equal(response.status(), 200, 'a check: the server still accepts the session')
    }
    t.equal(await page.getAttribute('body', 'data-state'), 'signed-in', 'so the page stays signed in')
    t.equal(await page.textContent('#idle-countdown'), '0:00', 'its countdown, by its own clock, at 0:00')
    t.equal((await cookieNamed(context, 'token'))?.value, token, 'and the cookie stays')
  })

  t.test('logout removes the cookie from the browser', alone, async (t) => {
    const { context, page } = await freshPage(t)
    // Remember me: even a persistent cookie goes.
    await signIn(page, origin, { remember: true })
    const token = (await cookieNamed(context, 'token'))!
    const hint = (await cookieNamed(context, 'token.exp'))!
    t.ok(token.expires > 0, 'a persistent cookie')
    t.ok(Math.abs(hint.expires - token.expires) < 1, 'the hint lives as long as the token cookie (same Max-Age)')
    const { e, a } = parseHint(hint.value)
    t.equal(a, e, 'a persistent login has no cap beyond exp: a = e')
    await page.click('#call-api')
    await page.waitForSelector('#log li:first-child .note >> text=OK; persistent login: never renews')
    t.pass('the API button says a persistent login never renews')
    await Promise.all([
      page.waitForResponse(`${origin}/logout`),
      page.click('#logout')
    ])
    await page.waitForSelector('body[data-state="signed-out"]')
    t.equal(await cookieNamed(context, 'token'), undefined, 'no token cookie')
    t.equal(await cookieNamed(context, 'token.exp'), undefined, 'no hint')
    t.same(await context.cookies(), [], 'no cookies at all')
    t.match(await fetchInPage(page, '/api/me'), { status: 401, body: { code: 'FST_TOKEN_COOKIE_MISSING' } })
    await page.reload()
    await page.waitForSelector('body[data-state="signed-out"]')
  })

  t.test('the web-storage flow: Bearer header, token only in this tab', alone, async (t) => {
    const { context, page } = await freshPage(t)
    await page.goto(`${origin}/storage`)
    await page.waitForSelector('body[data-state="signed-out"]')
    await page.click('.user-chip[data-username="bob"]')
    await page.click('#login-form button[type="submit"]')
    await page.waitForSelector('body[data-state="signed-in"]')
    const token = await page.evaluate(() => sessionStorage.getItem('access_token'))
    t.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'access_token from the body is in sessionStorage')
    t.same(await context.cookies(), [], 'no cookie: the login was fetched with credentials: omit')

    const [request] = await Promise.all([
      page.waitForRequest(`${origin}/api/me`),
      page.click('#call-api')
    ])
    const headers = await request.allHeaders()
    t.equal(headers.authorization, `Bearer ${token}`, 'sent as Authorization: Bearer')
    t.equal(headers.cookie, undefined, 'and no cookie')
    t.equal((await request.response())?.status(), 200, 'the API accepted it')
    await page.waitForSelector('#result[data-status="200"]')
    t.match(await page.textContent('#result'), /"username": "bob"/)

    await page.reload()
    await page.waitForSelector('body[data-state="signed-in"]')
    t.equal(await page.evaluate(() => sessionStorage.getItem('access_token')), token, 'a reload keeps it (same tab)')

    const tab = await context.newPage()
    await tab.goto(`${origin}/storage`)
    await tab.waitForSelector('body[data-state="signed-out"]')
    t.equal(await tab.evaluate(() => sessionStorage.getItem('access_token')), null, 'a new tab has no token')
    t.match(await fetchInPage(tab, '/api/me', { headers: {} }), { status: 401, body: { code: 'FST_TOKEN_COOKIE_MISSING' } })

    const other = await freshPage(t)
    await other.page.goto(`${origin}/storage`)
    await other.page.waitForSelector('body[data-state="signed-out"]')
    t.equal(await other.page.evaluate(() => sessionStorage.getItem('access_token')), null, 'nor does a new context')
  })

  t.test('"Forget token" revokes the token on the server: a copy of it is refused', alone, async (t) => {
    const { page } = await freshPage(t)
    await page.goto(`${origin}/storage`)
    await page.waitForSelector('body[data-state="signed-out"]')
    await page.click('.user-chip[data-username="alice"]')
    await page.click('#login-form button[type="submit"]')
    await page.waitForSelector('body[data-state="signed-in"]')
    const token = (await page.evaluate(() => sessionStorage.getItem('access_token')))!
    const bearer = { headers: { authorization: `Bearer ${token}` } }
    t.match(await fetchInPage(page, '/api/me', bearer), { status: 200 }, 'a copy of the token works while signed in')

    const [request] = await Promise.all([
      page.waitForRequest(`${origin}/logout`),
      page.click('#forget')
    ])
    t.equal(request.method(), 'POST')
    t.equal((await request.allHeaders()).authorization, `Bearer ${token}`, 'the page posted /logout with its token')
    t.equal((await request.response())?.status(), 204)
    await page.waitForSelector('body[data-state="signed-out"]')
    t.match(await page.textContent('#message'), /revoked on the server/, 'the page says so')
    t.equal(await page.evaluate(() => sessionStorage.getItem('access_token')), null, 'gone from sessionStorage')
    t.match(await fetchInPage(page, '/api/me', bearer), { status: 401, body: { code: 'FST_TOKEN_COOKIE_REVOKED' } }, 'the old token, sent as Bearer: revoked')
  })

  t.test('at phone widths nothing of the signed-in pages sticks out of the screen', alone, async (t) => {
    // A demo of its own, and another device signed in (a long User-Agent), so the devices panel lists one with
    // a sign-out button.
    const demo = await startDemo(t, { remember: '1h' })
    const phone = 'Mozilla/5.0 (Linux; Android 14; SM-S921B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.122 Mobile Safari/537.36'
    const other = await fetch(`${demo}/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': phone }, body: '{"username":"alice","password":"wonderland"}' })
    t.equal(other.status, 200, 'alice, signed in on another device')
    // Both widths at once, each in its own context.
    await Promise.all([{ width: 360, height: 740 }, { width: 414, height: 896 }].map(async (viewport) => {
      const context = await browser.newContext({ viewport })
      t.teardown(() => context.close())
      const page = await context.newPage()
      for (const remember of [false, true]) {
        await signIn(page, demo, { remember })
        await page.click('#call-api')
        await page.waitForSelector('#log li:nth-child(2)')
        await page.waitForSelector('#email >> text=alice@example.com')
        // This device and the other one, at least (the other width's context may be listed too).
        await page.waitForSelector('#devices li.current')
        await page.waitForSelector('#devices li button.revoke')
        const layout = await overflow(page, '.top, .top *, #signed-in, #signed-in *, .explain *')
        const what = `${viewport.width} px, ${remember ? 'remember me' : 'sliding'}`
        t.ok(layout.scrollWidth <= layout.innerWidth, `${what}: no sideways scrolling (${layout.scrollWidth} <= ${layout.innerWidth})`)
        t.same(layout.outside, [], `${what}: every element, buttons, badges, the e-mail form and the devices included, within the screen`)
        const buttons = await page.$$eval('#signed-in button', (buttons) => buttons.map((button) => {
          const box = button.getBoundingClientRect()
          return { text: button.textContent, left: box.left, right: box.right }
        }))
        t.equal(await page.locator('#signed-in .actions button').count(), 3, 'the three session buttons')
        t.ok(buttons.some(({ text }) => text === 'Sign out') && buttons.some(({ text }) => text === 'Sign out other devices'), `${what}: the devices panel's buttons`)
        t.ok(buttons.every(({ left, right }) => left >= 0 && right <= viewport.width), `${what}: the buttons are all on screen (${buttons.length})`)

        // The password dialog of the sensitive action.
        await page.evaluate(() => (document.getElementById('reauth') as HTMLDialogElement).showModal())
        const dialog = await overflow(page, '#reauth, #reauth *')
        t.same(dialog.outside, [], `${what}: the password dialog fits`)
        await page.click('#reauth-cancel')
        await page.waitForSelector('#reauth', { state: 'hidden' })

        await page.click('#logout')
        await page.waitForSelector('body[data-state="signed-out"]')
      }
      // The public page, as a guest and signed in.
      for (const signedIn of [false, true]) {
        if (signedIn) await signIn(page, demo, { user: 'bob' })
        await page.goto(`${demo}/welcome`)
        await page.waitForSelector(`body[data-state="${signedIn ? 'signed-in' : 'guest'}"]`)
        const layout = await overflow(page, '.top, .top *, #hello, #hello *, .explain *')
        t.ok(layout.scrollWidth <= layout.innerWidth, `${viewport.width} px, public page${signedIn ? ', signed in' : ''}: no sideways scrolling`)
        t.same(layout.outside, [], `${viewport.width} px, public page${signedIn ? ', signed in' : ''}: within the screen`)
      }
      // The web-storage tab: a JWT is one long word, and wraps.
      await page.goto(`${demo}/storage`)
      await page.waitForSelector('body[data-state="signed-out"]')
      await page.click('.user-chip[data-username="bob"]')
      await page.click('#login-form button[type="submit"]')
      await page.waitForSelector('body[data-state="signed-in"]')
      await page.click('#call-api')
      await page.waitForSelector('#result[data-status="200"]')
      const layout = await overflow(page, '.top, .top *, #signed-in, #signed-in *')
      t.ok(layout.scrollWidth <= layout.innerWidth, `${viewport.width} px, web storage: no sideways scrolling`)
      t.same(layout.outside, [], `${viewport.width} px, web storage: the token and the response wrap`)
    }))
  })

  t.test('the pages have a favicon: no 404 in the console', alone, async (t) => {
    const served: Array<{ url: string, status: number, type: unknown }> = []
    /** Resolves when the demo has served an icon to the page at a path (the request's Referer). */
    const iconFor = new Map<string, () => void>()
    const demo = await startDemo(t, {}, (app) => {
      app.addHook('onResponse', async (request, reply) => {
        served.push({ url: request.url, status: reply.statusCode, type: reply.getHeader('content-type') })
        const page = request.headers.referer === undefined ? undefined : new URL(request.headers.referer).pathname
        if (request.url.startsWith('/favicon') && page !== undefined) iconFor.get(page)?.()
      })
    })
    const notFound: string[] = []
    // Both pages at once, each in a fresh context: nothing cached, so each browser context asks for the icon.
    await Promise.all(['/', '/storage', '/welcome'].map(async (path) => {
      const { page } = await freshPage(t)
      page.on('console', (message) => { if (/status of 404/.test(message.text())) notFound.push(`${path}: ${message.text()}`) })
      const icon = new Promise<void>((resolve) => iconFor.set(path, resolve))
      await page.goto(`${demo}${path}`)
      await page.waitForSelector(`body[data-state="${path === '/welcome' ? 'guest' : 'signed-out'}"]`)
      // The browser fetches the icon on its own, after the page: wait until the demo has served it.
      await icon
    }))
    t.match(served.filter(({ url }) => url.startsWith('/favicon')), [
      { url: '/favicon.svg', status: 200, type: 'image/svg+xml' },
      { url: '/favicon.svg', status: 200, type: 'image/svg+xml' },
      { url: '/favicon.svg', status: 200, type: 'image/svg+xml' }
    ], 'the three pages link /favicon.svg, and it is served')
    t.same(served.filter(({ status }) => status === 404), [], 'the demo answered no request with 404')
    t.same(notFound, [], 'and the console shows none')
    t.equal((await fetch(`${demo}/favicon.ico`)).status, 204, '/favicon.ico, asked anyway: an empty answer, not a 404')
  })

  t.test('without JavaScript the pages say what they need, and the API works as they say', alone, async (t) => {
    const context = await browser.newContext({ javaScriptEnabled: false })
    t.teardown(() => context.close())
    const page = await context.newPage()
    // The public page first: the curl commands checked below are those of the last page, /storage.
    for (const path of ['/welcome', '/', '/storage']) {
      await page.goto(`${origin}${path}`)
      t.ok(await page.isVisible('noscript h2 >> text=This page needs JavaScript'), `${path}: the <noscript> explanation shows`)
      t.notOk(await page.isVisible('#signed-out'), `${path}: no sign-in form that could not work`)
      t.notOk(await page.isVisible('#signed-in'), `${path}: nor the signed-in card`)
      t.notOk(await page.isVisible('#hello'), `${path}: nor a greeting`)
    }
    // The curl commands it shows, as fetch() calls from here.
    const commands = (await page.textContent('noscript pre'))!
    t.match(commands, /curl -s -d username=alice -d password=wonderland \S+\/login\n/)
    const login = await fetch(`${origin}/login`, { method: 'POST', body: new URLSearchParams({ username: 'alice', password: 'wonderland' }) })
    const { access_token: token } = await login.json() as { access_token: string }
    t.match(commands, /-H "Authorization: Bearer <access_token>" \S+\/api\/me/)
    const me = await fetch(`${origin}/api/me`, { headers: { authorization: `Bearer ${token}` } })
    t.equal(me.status, 200, 'a form-encoded login and a Bearer call: signed in')
  })

  /** A page elsewhere with a form that posts to the demo's protected /api/echo, and a plain link to /api/me. */
  const attackerPage = `<!doctype html><title>elsewhere</title>
    <form method="post" action="${origin}/api/echo"><input name="amount" value="1000000"><button id="post">Win a prize</button></form>
    <a id="link" href="${origin}/api/me">a link</a>`

  /** Submits the attacker page's form; resolves to what the browser sent and what the demo answered. */
  async function postFrom (page: Page, otherOrigin: string) {
    await page.goto(otherOrigin)
    const [request] = await Promise.all([
      page.waitForRequest(`${origin}/api/echo`),
      page.click('#post')
    ])
    const response = (await request.response())!
    return { method: request.method(), headers: await request.allHeaders(), status: response.status(), body: await response.json() }
  }

  t.test('a cross-site form POST does not carry the SameSite=Lax cookie', alone, async (t) => {
    const { page } = await freshPage(t)
    await signIn(page, origin)

    // From the demo itself: the protected POST works with the cookie.
    t.match(await fetchInPage(page, '/api/echo', {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'amount=100'
    }), { status: 200, body: { user: 'alice', received: { amount: '100' } } }, 'same-origin POST: signed in')

    // From another site (127.0.0.2): the browser leaves the cookie out.
    const otherSite = await startOtherOrigin(t, '127.0.0.2', attackerPage)
    const post = await postFrom(page, otherSite)
    t.equal(post.method, 'POST')
    t.notMatch(post.headers.cookie ?? '', /(^|; )token=/, 'the POST carried no token cookie')
    t.match(post, { status: 401, body: { code: 'FST_TOKEN_COOKIE_MISSING' } }, 'the protected route saw no cookie')

    // Control: Lax still sends it with a top-level GET from the other site, so the 401 above is SameSite at work.
    await page.goto(otherSite)
    const [link] = await Promise.all([
      page.waitForResponse(`${origin}/api/me`),
      page.click('#link')
    ])
    t.equal(link.status(), 200, 'a cross-site link (top-level GET) carries it')
    t.match(await link.json(), { user: { username: 'alice' } })
  })

  t.test('a form POST from another port of the same host carries the cookie, and the cross-site guard refuses it', alone, async (t) => {
    const { context, page } = await freshPage(t)
    await signIn(page, origin)
    const token = (await cookieNamed(context, 'token'))!.value

    // 127.0.0.1 on another port: another origin, but the same site, so SameSite=Lax lets the cookie go.
    const sameSite = await startOtherOrigin(t, '127.0.0.1', attackerPage)
    const post = await postFrom(page, sameSite)
    t.match(post.headers.cookie, new RegExp(`(^|; )token=${token.replace(/\./g, '\\.')}(;|$)`), 'the POST carried the token cookie')
    t.equal(post.headers['sec-fetch-site'], 'same-site', 'the browser marks it same-site')
    t.match(post, { status: 403, body: { code: 'FST_TOKEN_COOKIE_CROSS_SITE' } }, 'the guard refused it before the handler')
    t.equal((await cookieNamed(context, 'token'))?.value, token, 'and left the cookie alone: a forged request logs nobody out')
    await page.goto(origin)
    await page.waitForSelector('body[data-state="signed-in"]')
  })

  t.test('npm start: node demo/server.js prints its URL and serves the demo', alone, async (t) => {
    // What `npm start` runs once dist/ is built; PORT=0 for a free port. DEMO_REMEMBER in bare seconds.
    const { url, output } = await runDemo(t, { PORT: '0', DEMO_IDLE: '30s', DEMO_ABSOLUTE: '2m', DEMO_REMEMBER: '3600', DEMO_REAUTH: '90s', TOKEN_SECRET: undefined })
    t.match(url, /^http:\/\/127\.0\.0\.1:\d+$/, 'prints where it listens: 127.0.0.1 only')
    t.match(output, /random secret/, 'says it signs with a random secret')
    t.match(output, /alice \/ wonderland/, 'and who can sign in')
    t.match(output, /"Change e-mail" needs a sign-in within 90s/, 'and how recent a login the sensitive action needs')
    const { page } = await freshPage(t)
    await signIn(page, url, { user: 'bob', remember: true })
    t.match(await fetchInPage(page, '/api/me'), { status: 200, body: { user: { name: 'Bob the Builder' }, lifetime: { idle: 3600 } } })
    await page.click('#logout')
    await signIn(page, url)
    t.match(await fetchInPage(page, '/api/poll'), { status: 200, body: { policy: 'sliding', lifetime: { idle: 30, absolute: 120 }, reauth: 90 } }, 'lifetimes from the environment')
  })

  t.test('the demo turns away wrong passwords and bad settings', alone, async (t) => {
    const { context, page } = await freshPage(t)
    await page.goto(origin)
    await page.waitForSelector('body[data-state="signed-out"]')
    await page.fill('#username', 'alice')
    await page.fill('#password', 'not-her-password')
    await page.click('#login-form button[type="submit"]')
    await page.waitForSelector('#message >> text=Unknown user or wrong password')
    t.same(await context.cookies(), [], 'no cookie')
    const json = { 'content-type': 'application/json' }
    t.match(await fetchInPage(page, '/login', { method: 'POST', headers: json, body: '{"username":"mallory","password":"x"}' }), { status: 401 }, 'unknown user')
    t.match(await fetchInPage(page, '/login', { method: 'POST' }), { status: 401 }, 'no body')
    t.match(await fetchInPage(page, '/login', {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=alice&password=wonderland&remember=on'
    }), { status: 200, body: { policy: 'persistent' } }, 'a form post with a checked box: remember me')

    const buildDemo = await loadDemo()
    await t.rejects(buildDemo({ idle: 'soon' }), /idle \(DEMO_IDLE\): expected a duration/)
  })

  t.test('screenshot of the signed-in page', alone, async (t) => {
    // The npm start lifetimes, so the countdowns read as a person would see them; a demo of its own, where alice
    // is signed in on one other device (a phone), so the devices panel lists two.
    const demo = await startDemo(t, {})
    const phone = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'
    await fetch(`${demo}/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': phone }, body: '{"username":"alice","password":"wonderland"}' })
    const context = await browser.newContext({ viewport: { width: 860, height: 600 }, deviceScaleFactor: 2 })
    t.teardown(() => context.close())
    const page = await context.newPage()
    await signIn(page, demo)
    await page.waitForSelector('#devices[data-count="2"]')
    await page.waitForSelector('#email >> text=alice@example.com')
    await page.click('#call-api')
    await page.waitForSelector('#log li:nth-child(2)')
    await page.click('#poll')
    await page.waitForSelector('#log li:nth-child(3)')
    // Let the countdowns tick past the login second, and the bars settle.
    await page.waitForFunction(() => document.getElementById('idle-countdown')?.textContent === '0:58')
    await mkdir(new URL('../test-artifacts/', import.meta.url), { recursive: true })
    const path = new URL('../test-artifacts/signed-in.png', import.meta.url).pathname
    await page.screenshot({ path, fullPage: true, animations: 'disabled' })
    t.pass(`saved ${path}`)
  })
}
