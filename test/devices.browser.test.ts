// The demo's session control in real Chromium: "Your devices" (several browser contexts as several devices,
// each with its own User-Agent), the sensitive action that needs a recent login, the public page with an
// optional login, and parallel requests at the moment a renewal is due.
// Needs Debian's Chromium (`apt-get install -y chromium`) or CHROMIUM_PATH; skipped without it.
import type { BrowserContext, Page } from 'playwright-core'
import t from 'tap'
import {
  chromiumPath, cookieNamed, fetchInPage, hasChromium, launchBrowser, pageHint, signIn, sleepUntil, startDemo
} from './helpers/browser.js'

/** User-Agents of other devices than this Chromium, and how the page names them. */
const agents = {
  windows: ['Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0', 'Firefox on Windows'],
  iphone: ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1', 'Safari on iPhone'],
  mac: ['Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36', 'Chrome on macOS'],
  android: ['Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36', 'Chrome on Android']
} as const

type Agent = keyof typeof agents

interface Listed { sid: string, name: string, current: boolean, button: boolean, times: string }

if (!hasChromium) {
  t.plan(0, `browser tests skipped: no Chromium at ${chromiumPath}; apt-get install -y chromium, or set CHROMIUM_PATH`)
} else {
  const browser = await launchBrowser(t)
  // Each test has a demo of its own (its own memory store): other tests' logins never show up in its lists.
  // The reauth and renewal tests wait in real time (about 2 s each): all run side by side.
  t.jobs = 4
  const together = { buffered: true }

  interface Device { context: BrowserContext, page: Page, sid: string }

  /** A device: a browser context with its own cookie jar and User-Agent, signed in through the page's form. */
  async function device (tt: { teardown: (fn: () => unknown) => void }, origin: string, agent: Agent, user = 'alice'): Promise<Device> {
    const context = await browser.newContext({ userAgent: agents[agent][0] })
    tt.teardown(() => context.close())
    const page = await context.newPage()
    await signIn(page, origin, { user })
    // The page loads its devices after signing in: this device is among them, marked.
    await page.waitForSelector('#devices li.current')
    const sid = (await page.getAttribute('#devices li.current', 'data-sid'))!
    return { context, page, sid }
  }

  /** The devices panel as the page shows it, once it lists `count` devices. */
  async function listed (page: Page, count: number): Promise<Listed[]> {
    await page.waitForSelector(`#devices[data-count="${count}"]`)
    return page.$$eval('#devices li', (items) => items.map((item) => ({
      sid: (item as HTMLElement).dataset.sid!,
      name: item.querySelector('.device-name')!.textContent!,
      current: item.classList.contains('current') && item.querySelector('.this-device') !== null,
      button: item.querySelector('button.revoke') !== null,
      times: item.querySelector('.device-times')!.textContent!
    })))
  }

  /** Clicks the panel's Refresh and waits for the list it loads. */
  async function refresh (page: Page, count: number): Promise<Listed[]> {
    await Promise.all([
      page.waitForResponse((response) => new URL(response.url()).pathname === '/api/sessions'),
      page.click('#refresh-devices')
    ])
    return listed(page, count)
  }

  const post = { method: 'POST' }

  t.test('two devices list each other, the current one marked; one signs the other out, which is then refused', together, async (t) => {
    const origin = await startDemo(t, {})
    const laptop = await device(t, origin, 'windows')
    t.same((await listed(laptop.page, 1)).map(({ name, current, button }) => ({ name, current, button })),
      [{ name: 'Firefox on Windows', current: true, button: false }], 'one device: this one, with no sign-out button')
    t.ok(await laptop.page.isDisabled('#revoke-others'), 'nothing else to sign out')

    const phone = await device(t, origin, 'iphone')
    t.not(phone.sid, laptop.sid, 'each device has a session of its own')
    // Newest first, but two logins in the same second may come in either order: compared by sid.
    const bySid = (list: Array<Omit<Listed, 'times'>>) => list.map(({ sid, name, current, button }) => ({ sid, name, current, button }))
      .sort((a, b) => a.sid.localeCompare(b.sid))
    const onPhone = await listed(phone.page, 2)
    t.same(bySid(onPhone), bySid([
      { sid: phone.sid, name: 'Safari on iPhone', current: true, button: false },
      { sid: laptop.sid, name: 'Firefox on Windows', current: false, button: true }
    ]), 'the phone lists both, itself marked')
    for (const { times } of onPhone) t.match(times, /^Signed in \d\d:\d\d:\d\d · last active \d\d:\d\d:\d\d · ends \d\d:\d\d:\d\d$/, 'login time, last activity, end')
    t.same(bySid(await refresh(laptop.page, 2)), bySid([
      { sid: phone.sid, name: 'Safari on iPhone', current: false, button: true },
      { sid: laptop.sid, name: 'Firefox on Windows', current: true, button: false }
    ]), 'and so does the laptop, itself marked')
    t.notOk(await laptop.page.isDisabled('#revoke-others'), '"Sign out other devices" is on')

    // Another user's sessions are not in the list, and cannot be signed out from here.
    const bob = await device(t, origin, 'mac', 'bob')
    t.equal((await refresh(laptop.page, 2)).length, 2, 'bob signing in changes nothing in alice\'s list')
    t.match(await fetchInPage(laptop.page, `/api/sessions/${bob.sid}/revoke`, post), { status: 404, body: { message: 'No such session' } }, 'bob\'s sid: 404')
    t.match(await fetchInPage(laptop.page, '/api/sessions/no-such-session/revoke', post), { status: 404 }, 'an unknown sid: 404')
    t.equal((await fetchInPage(bob.page, '/api/me')).status, 200, 'bob is still signed in')

    // The laptop signs the phone out.
    const [revoked] = await Promise.all([
      laptop.page.waitForResponse(`${origin}/api/sessions/${phone.sid}/revoke`),
      laptop.page.click(`#devices li[data-sid="${phone.sid}"] button.revoke`)
    ])
    t.equal(revoked.status(), 204, 'the laptop signed the phone out')
    t.same((await listed(laptop.page, 1)).map(({ sid }) => sid), [laptop.sid], 'the phone vanished from the laptop\'s list')
    t.ok(await laptop.page.isDisabled('#revoke-others'))

    // The phone's next request: refused, and the page says why.
    const token = (await cookieNamed(phone.context, 'token'))!.value
    const [refused] = await Promise.all([
      phone.page.waitForResponse(`${origin}/api/me`),
      phone.page.click('#call-api')
    ])
    t.equal(refused.status(), 401, 'the phone is refused')
    t.match(await refused.json(), { code: 'FST_TOKEN_COOKIE_REVOKED' }, 'as revoked')
    await phone.page.waitForSelector('body[data-state="signed-out"]')
    t.equal(await phone.page.textContent('#message'), 'Your session was revoked. Sign in again.')
    t.equal(await cookieNamed(phone.context, 'token'), undefined, 'and the refusal cleared its cookie')
    const copy = await fetch(`${origin}/api/me`, { headers: { authorization: `Bearer ${token}` } })
    t.equal(copy.status, 401, 'a copy of the phone\'s token is refused too: the session ended everywhere')

    // Its own sid through the same route: a logout.
    t.match(await fetchInPage(laptop.page, `/api/sessions/${laptop.sid}/revoke`, post), { status: 204 }, 'the laptop signs itself out')
    t.equal(await cookieNamed(laptop.context, 'token'), undefined, 'its cookie is gone')
    t.match(await fetchInPage(bob.page, '/api/sessions'), { status: 200, body: { sessions: [{ sid: bob.sid, current: true }] } }, 'bob\'s own list: only him')
  })

  t.test('"sign out other devices" leaves only the current one', together, async (t) => {
    const origin = await startDemo(t, {})
    // Four devices at once: three of alice's, one of bob's.
    const [laptop, phone, tablet, bob] = await Promise.all([
      device(t, origin, 'windows'), device(t, origin, 'iphone'), device(t, origin, 'android'), device(t, origin, 'mac', 'bob')
    ])
    const before = await refresh(laptop.page, 3)
    t.same(before.map(({ sid }) => sid).sort(), [laptop.sid, phone.sid, tablet.sid].sort(), 'alice: three devices')
    t.same(before.filter(({ current }) => current).map(({ sid }) => sid), [laptop.sid], 'one of them current')

    const [answer] = await Promise.all([
      laptop.page.waitForResponse(`${origin}/api/sessions/revoke-others`),
      laptop.page.click('#revoke-others')
    ])
    t.match(await answer.json(), { revoked: 2 }, 'two signed out')
    t.match(await listed(laptop.page, 1), [{ sid: laptop.sid, current: true }], 'only this device is left')
    t.ok(await laptop.page.isDisabled('#revoke-others'))
    await laptop.page.waitForSelector('#log li:first-child .note >> text=Signed out 2 other device(s)')

    for (const [name, other] of [['phone', phone], ['tablet', tablet]] as const) {
      t.match(await fetchInPage(other.page, '/api/me'), { status: 401, body: { code: 'FST_TOKEN_COOKIE_REVOKED' } }, `the ${name} is refused`)
    }
    t.equal((await fetchInPage(laptop.page, '/api/me')).status, 200, 'this device still works')
    t.equal((await fetchInPage(bob.page, '/api/me')).status, 200, 'another user\'s device is untouched')

    await laptop.page.reload()
    await laptop.page.waitForSelector('body[data-state="signed-in"]')
    t.match(await listed(laptop.page, 1), [{ sid: laptop.sid, current: true }], 'after a reload: still just this one')
  })

  t.test('the sensitive action: a fresh login passes; an older one asks for the password, then passes', together, async (t) => {
    // "Change e-mail" needs a login within 4 s here: at least 3 s after signing in (auth_time is in whole seconds).
    const reauth = 4
    const origin = await startDemo(t, { reauth: `${reauth}s`, remember: '1h' })
    const context = await browser.newContext()
    t.teardown(() => context.close())
    const page = await context.newPage()
    // Remember me: the new login keeps that choice.
    await signIn(page, origin, { remember: true })
    await page.waitForSelector('#email >> text=alice@example.com')
    const { sessions: [first] } = (await fetchInPage(page, '/api/sessions')).body
    /** Whether an answer came while the login was recent enough: on a machine this slow, a fresh login is not. */
    const inTime = (authTime: number) => Date.now() / 1000 - authTime <= reauth

    async function changeEmail (email: string) {
      await page.fill('#new-email', email)
      const [response] = await Promise.all([
        page.waitForResponse(`${origin}/api/email`),
        page.click('#change-email')
      ])
      return response
    }
    const fresh = await changeEmail('alice@wonderland.example')
    if (inTime(first.authTime)) {
      t.equal(fresh.status(), 200, 'just signed in: the change goes through')
      await page.waitForSelector('#email >> text=alice@wonderland.example')
      t.notOk(await page.isVisible('#reauth'), 'without asking for the password')
    } else {
      t.comment(`the first change came over ${reauth} s after the login: not checked`)
      if (fresh.status() !== 200) await page.click('#reauth-cancel')
    }
    t.match(await fetchInPage(page, '/api/email', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"email":"not an address"}'
    }), { status: 400 }, 'not an e-mail address: 400')

    // Past the limit: more than 4 s since auth_time.
    await sleepUntil(first.authTime + reauth)
    const token = (await cookieNamed(context, 'token'))!
    const old = await changeEmail('alice@looking-glass.example')
    t.equal(old.status(), 401, `a login over ${reauth} s old: refused`)
    t.match(await old.json(), { code: 'FST_TOKEN_COOKIE_REAUTH' }, 'asking for a new login')
    await page.waitForSelector('#reauth[open]')
    t.pass('the page asks for the password')
    t.equal((await cookieNamed(context, 'token'))?.value, token.value, 'the cookie is kept')
    t.equal((await fetchInPage(page, '/api/poll')).status, 200, 'and the session goes on for other routes')
    t.notMatch(await page.textContent('#email'), /looking-glass/, 'nothing changed yet')

    // A wrong password: the dialog says so and stays.
    await page.fill('#reauth-password', 'not-her-password')
    const [wrong] = await Promise.all([
      page.waitForResponse(`${origin}/api/reauth`),
      page.click('#reauth-confirm')
    ])
    t.equal(wrong.status(), 401)
    await page.waitForSelector('#reauth-error >> text=Wrong password')
    t.ok(await page.isVisible('#reauth'), 'the dialog stays open')
    t.equal((await cookieNamed(context, 'token'))?.value, token.value, 'a wrong password changes nothing')

    // The right one: a new login, then the action again, which now passes.
    await page.fill('#reauth-password', 'wonderland')
    const retried = page.waitForResponse(`${origin}/api/email`)
    const [confirmed] = await Promise.all([
      page.waitForResponse(`${origin}/api/reauth`),
      page.click('#reauth-confirm')
    ])
    t.equal(confirmed.status(), 200, 'the password is confirmed')
    t.match(await confirmed.json(), { policy: 'persistent', user: { username: 'alice' } }, 'a new login with the same remember-me choice')
    const { sessions } = (await fetchInPage(page, '/api/sessions')).body
    const retry = await retried
    if (inTime(sessions[0].authTime)) {
      t.equal(retry.status(), 200, 'the page retried the action, which passed')
      t.match(await retry.json(), { email: 'alice@looking-glass.example' })
      await page.waitForSelector('#email >> text=alice@looking-glass.example')
      t.match(await page.textContent('#email-note'), /^Changed to alice@looking-glass\.example\.$/)
    } else {
      t.comment(`the retry came over ${reauth} s after the new login: not checked`)
    }
    t.notOk(await page.isVisible('#reauth'), 'the dialog is gone')

    const renewed = (await cookieNamed(context, 'token'))!
    t.not(renewed.value, token.value, 'a new token cookie')
    t.ok(renewed.expires > 0, 'still a persistent cookie')
    t.equal(sessions.length, 1, 'one session: the new login replaced the old one')
    t.ok(sessions[0].sid !== first.sid && sessions[0].authTime > first.authTime, 'with a new session id and login time')
    await page.waitForSelector(`#devices li.current[data-sid="${sessions[0].sid}"]`)
    t.pass('the devices panel shows the new session')
    const copy = await fetch(`${origin}/api/me`, { headers: { authorization: `Bearer ${token.value}` } })
    t.equal(copy.status, 401, 'the old session\'s token is revoked')
  })

  t.test('the public page greets a signed-in user by name and a guest, with a 200 both ways', together, async (t) => {
    const origin = await startDemo(t, {})

    /** Opens /welcome; resolves to the status of /api/hello and the greeting shown. */
    async function welcome (page: Page) {
      const [response] = await Promise.all([
        page.waitForResponse(`${origin}/api/hello`),
        page.goto(`${origin}/welcome`)
      ])
      await page.waitForSelector('body:not([data-state="loading"])')
      return { status: response.status(), state: await page.getAttribute('body', 'data-state'), greeting: await page.textContent('#greeting') }
    }

    const guest = await browser.newContext()
    t.teardown(() => guest.close())
    const guestPage = await guest.newPage()
    t.same(await welcome(guestPage), { status: 200, state: 'guest', greeting: 'Hello, guest' }, 'no cookie: a guest, and a 200')

    const alice = await device(t, origin, 'mac')
    t.same(await welcome(alice.page), { status: 200, state: 'signed-in', greeting: 'Hello, Alice Liddell' }, 'signed in: greeted by name')
    await Promise.all([
      alice.page.waitForResponse(`${origin}/api/hello`),
      alice.page.click('#ask-again')
    ])
    await alice.page.waitForFunction(() => document.getElementById('hello-body')?.textContent?.includes('"user": "alice"'))
    t.pass('the page shows what /api/hello answered')

    // Signed out from another device: the cookie is still in this browser, but revoked.
    const phone = await device(t, origin, 'iphone')
    t.match(await fetchInPage(phone.page, '/api/sessions/revoke-others', post), { status: 200, body: { revoked: 1 } })
    t.ok(await cookieNamed(alice.context, 'token'), 'alice\'s browser still has its cookie')
    t.same(await welcome(alice.page), { status: 200, state: 'guest', greeting: 'Hello, guest' }, 'a revoked cookie: a guest, still a 200')

    // A cookie that is no token at all.
    await guest.addCookies([{ name: 'token', value: 'not-a-token', url: origin }])
    t.same(await welcome(guestPage), { status: 200, state: 'guest', greeting: 'Hello, guest' }, 'an invalid cookie: a guest, still a 200')
  })

  t.test('ten parallel requests at the moment a renewal is due: all pass, and the session goes on', together, async (t) => {
    // A renewal is due 1.5 s after each token is issued (12 s idle, renewAfter 0.125): 10 s to spare.
    const idle = 12
    const renewAfter = 0.125
    const origin = await startDemo(t, { idle: `${idle}s`, absolute: '1m', renewAfter })
    const { context, page, sid } = await device(t, origin, 'windows')
    const login = (await pageHint(page))!
    const before = (await cookieNamed(context, 'token'))!.value
    await sleepUntil(login.e - idle + idle * renewAfter)

    // All at once from the page, each with the cookie of the login: each is due a renewal.
    const answers = await page.evaluate(() => Promise.all(Array.from({ length: 10 }, async () => {
      const response = await fetch('/api/me')
      const body = await response.json()
      return { status: response.status, renewed: body.renewed === true }
    })))
    t.same(answers.map(({ status }) => status), Array(10).fill(200), 'all ten answered 200')
    t.ok(answers.some(({ renewed }) => renewed), `renewed: ${answers.filter(({ renewed }) => renewed).length} of 10 re-issued the cookie`)

    const after = (await cookieNamed(context, 'token'))!.value
    t.not(after, before, 'the browser holds a renewed token')
    const hint = (await pageHint(page))!
    t.ok(hint.e > login.e, `token.exp moved forward (${login.e} to ${hint.e})`)
    t.equal(hint.a, login.a, 'the absolute cap did not move')

    t.match(await fetchInPage(page, '/api/me'), { status: 200, body: { user: { username: 'alice' } } }, 'the next request passes')
    const { sessions } = (await fetchInPage(page, '/api/sessions')).body
    t.match(sessions, [{ sid, current: true }], 'the same session, still listed once')
    t.ok(sessions[0].lastSeenAt > sessions[0].authTime, 'its last activity moved past the login')
    // And the page, clicking its own button, goes on with the renewed token.
    await page.click('#call-api')
    await page.waitForSelector('#log .status.ok >> text=200')
    t.equal(await page.getAttribute('body', 'data-state'), 'signed-in')
  })
}
