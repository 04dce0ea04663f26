// The cookie-session page. The token cookie is httpOnly, so this script never sees it: it reads the
// `token.exp` expiry hint (e=<expiresAt>&a=<absoluteExpiresAt>, seconds since epoch) for the countdowns,
// and lets the browser send the token cookie with each request. The server never trusts the hint.

const $ = (id) => document.getElementById(id)
const hintName = 'token.exp'

/** What the server said about the session (user, policy, lifetime); null when signed out. */
let session = null
let lastHint = null
/** Whether the page is asking the server about a session its hint says is over; and not again before when (ms). */
let checking = false
let nextCheck = 0

/** The expiry hint from document.cookie, or null. Countdowns use this browser's clock. */
function readHint () {
  const entry = document.cookie.split('; ').find((cookie) => cookie.startsWith(`${hintName}=`))
  if (entry === undefined) return null
  const params = new URLSearchParams(entry.slice(hintName.length + 1))
  const expiresAt = Number(params.get('e'))
  const absoluteExpiresAt = Number(params.get('a'))
  return expiresAt > 0 && absoluteExpiresAt > 0 ? { expiresAt, absoluteExpiresAt } : null
}

const pad = (n) => String(n).padStart(2, '0')

/** 0:42, 4:59, 1:02:03, 6d 23h 59m */
function clock (seconds) {
  const s = Math.max(0, Math.ceil(seconds))
  const days = Math.floor(s / 86400)
  const hours = Math.floor((s % 86400) / 3600)
  const minutes = Math.floor((s % 3600) / 60)
  if (days > 0) return `${days}d ${hours}h ${pad(minutes)}m`
  if (hours > 0) return `${hours}:${pad(minutes)}:${pad(s % 60)}`
  return `${minutes}:${pad(s % 60)}`
}

/** 45 s, 5 min, 12 h, 7 days */
function words (seconds) {
  if (seconds < 120) return `${Math.round(seconds)} s`
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`
  return `${Math.round(seconds / 86400)} days`
}

const time = () => new Date().toLocaleTimeString([], { hour12: false })

function log (request, status, note) {
  const item = document.createElement('li')
  const ok = status < 400
  item.innerHTML = '<time></time><code></code><span class="status"></span><span class="note"></span>'
  item.querySelector('time').textContent = time()
  item.querySelector('code').textContent = request
  item.querySelector('.status').textContent = status
  item.querySelector('.status').classList.add(ok ? 'ok' : 'error')
  item.querySelector('.note').textContent = note
  $('log').prepend(item)
  while ($('log').children.length > 6) $('log').lastElementChild.remove()
}

function showSignedIn (info) {
  const first = session === null
  session = info
  $('who').textContent = info.user.name
  $('avatar').textContent = info.user.name.slice(0, 1)
  $('username-line').textContent = `@${info.user.username}`
  const sliding = info.policy === 'sliding'
  $('policy').textContent = sliding ? 'Sliding · browser-session cookie' : 'Persistent · remember me'
  $('policy').className = `badge ${info.policy}`
  $('idle-timer').querySelector('.label').textContent = sliding ? 'Idle expiry' : 'Expires'
  $('cap-note').textContent = sliding
    ? `Sign-in + ${words(info.lifetime.absolute)}: renewals stop here`
    : 'Same as expiry: a persistent login does not slide'
  if (first) {
    $('log').replaceChildren()
    $('devices').replaceChildren()
    $('email').textContent = '–'
    lastHint = readHint()
  }
  setState('signed-in')
  render()
  if (first) {
    loadAccount()
    loadDevices()
  }
}

function showSignedOut (message) {
  if ($('reauth').open) $('reauth').close()
  session = null
  lastHint = null
  $('message').textContent = message ?? ''
  $('message').hidden = !message
  setState('signed-out')
}

function setState (state) {
  document.body.dataset.state = state
  $('signed-in').hidden = state !== 'signed-in'
  $('signed-out').hidden = state !== 'signed-out'
}

const reasons = {
  FST_TOKEN_COOKIE_EXPIRED: 'Your session expired. Sign in again.',
  FST_TOKEN_COOKIE_MISSING: 'You are signed out.',
  FST_TOKEN_COOKIE_INVALID: 'Your session was not valid. Sign in again.',
  FST_TOKEN_COOKIE_REVOKED: 'Your session was revoked. Sign in again.'
}

/** The log line of a successful /api/me call: whether it renewed, and if not, why not. */
function apiNote (body) {
  if (body.renewed) return 'Session renewed: the idle window starts again'
  if (body.policy !== 'sliding') return 'OK; persistent login: never renews'
  const { expiry, lifetime } = body
  if (expiry.expiresAt >= expiry.absoluteExpiresAt) return 'OK; at the absolute cap: no more renewals'
  // Renewal is due once renewAfter of the idle window has passed since the token was issued.
  const due = expiry.expiresAt - lifetime.idle + lifetime.idle * lifetime.renewAfter
  return `OK; renewal not due yet (in ${words(Math.max(1, due - Date.now() / 1000))})`
}

/**
 * The hint says the session is over (by this browser's clock). The server decides: ask it, without
 * extending anything. Its 401 clears the token cookie and the hint, so the page does not go on showing
 * the old token.exp. Should it still accept the session (the clocks disagree), ask again a second later.
 */
async function endSession (message) {
  if (checking || Date.now() < nextCheck) return
  checking = true
  const response = await fetch('/api/poll').catch(() => null)
  const body = await response?.json().catch(() => ({}))
  checking = false
  // Signed out meanwhile (the Log out button): nothing to show.
  if (session === null) return
  if (response?.ok) {
    nextCheck = Date.now() + 1000
    showSignedIn(body)
  } else {
    // No answer at all: what the hint says.
    showSignedOut(response === null || body.code === 'FST_TOKEN_COOKIE_EXPIRED' ? message : reasons[body.code] ?? body.message)
    render()
  }
}

async function callApi (path, note) {
  const response = await fetch(path)
  const body = await response.json().catch(() => ({}))
  if (response.ok) {
    log(`GET ${path}`, response.status, note(body))
    showSignedIn(body)
  } else {
    log(`GET ${path}`, response.status, body.code ?? body.message)
    showSignedOut(reasons[body.code] ?? body.message)
  }
}

/** Once a second (and after each request): countdowns from the hint, and the end of the session. */
function render () {
  $('document-cookie').textContent = document.cookie || '(empty)'
  if (session === null) return
  const hint = readHint()
  const now = Date.now() / 1000
  if (hint === null) return showSignedOut('Signed out: the session cookie is gone.')
  const { idle, absolute, renewAfter } = session.lifetime
  const idleLeft = hint.expiresAt - now
  const capLeft = hint.absoluteExpiresAt - now
  $('idle-countdown').textContent = clock(idleLeft)
  $('cap-countdown').textContent = clock(capLeft)
  $('idle-countdown').dataset.until = hint.expiresAt
  $('cap-countdown').dataset.until = hint.absoluteExpiresAt
  $('idle-bar').style.width = `${Math.min(100, (idleLeft / idle) * 100)}%`
  $('cap-bar').style.width = `${Math.min(100, (capLeft / absolute) * 100)}%`
  $('idle-timer').classList.toggle('low', idleLeft < Math.min(idle / 4, 60))
  if (session.policy !== 'sliding') {
    $('idle-note').textContent = 'Fixed: activity does not extend it'
  } else if (hint.expiresAt >= hint.absoluteExpiresAt) {
    $('idle-note').textContent = 'At the cap: renewals cannot extend it any more'
  } else {
    $('idle-note').textContent = `Slides on API use after ${words(idle * renewAfter)}`
  }
  if (lastHint !== null && hint.expiresAt > lastHint.expiresAt) {
    // A green flash: the session slid.
    $('idle-timer').animate([
      { boxShadow: 'inset 0 0 0 2px #12805c, 0 0 0 4px #e3f5ed' },
      { boxShadow: 'inset 0 0 0 1px #e4e7ec' }
    ], { duration: 1200, easing: 'ease-out' })
  }
  lastHint = hint
  if (now >= hint.absoluteExpiresAt && session.policy === 'sliding') {
    endSession(`Your session reached its absolute cap (${words(session.lifetime.absolute)} after sign-in). Sign in again.`)
  } else if (now >= hint.expiresAt) {
    endSession(session.policy === 'sliding'
      ? `Your session expired after ${words(session.lifetime.idle)} without activity. Sign in again.`
      : 'Your remembered sign-in expired. Sign in again.')
  }
}

/** A JSON request to the API: the status and the parsed body ({} when there is none). */
async function send (method, path, body) {
  const init = body === undefined ? { method } : { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
  const response = await fetch(path, init)
  return { status: response.status, ok: response.ok, body: await response.json().catch(() => ({})) }
}

/** A 401 that ends the session (not a wrong password, not a login that is too old): the page signs out. */
function sessionOver (answer) {
  return answer.status === 401 && Object.hasOwn(reasons, answer.body.code)
}

async function loadAccount () {
  const answer = await send('GET', '/api/account')
  if (answer.ok) $('email').textContent = answer.body.email
  else if (sessionOver(answer)) showSignedOut(reasons[answer.body.code])
}

// Your devices ---------------------------------------------------------------------------------------------

/** "Chrome on Linux", "Safari on iPhone", "curl": a User-Agent as a person recognises it. */
function deviceName (agent) {
  if (!agent) return 'Unknown device'
  const browsers = [[/Edg(A|iOS)?\//, 'Edge'], [/Firefox\/|FxiOS\//, 'Firefox'], [/OPR\//, 'Opera'], [/Chrom(e|ium)\/|CriOS\//, 'Chrome'], [/Safari\//, 'Safari']]
  const systems = [[/iPhone/, 'iPhone'], [/iPad/, 'iPad'], [/Android/, 'Android'], [/Windows/, 'Windows'], [/CrOS/, 'ChromeOS'], [/Mac OS X|Macintosh/, 'macOS'], [/Linux/, 'Linux']]
  const browser = browsers.find(([pattern]) => pattern.test(agent))?.[1]
  const system = systems.find(([pattern]) => pattern.test(agent))?.[1]
  if (browser !== undefined && system !== undefined) return `${browser} on ${system}`
  // curl/8.5.0, node, python-requests/2.31: the program's name.
  return browser ?? system ?? agent.split(/[\s/]/)[0].slice(0, 40)
}

/** 14:02:07 today; 11 Dec, 14:02 on another day. */
function when (seconds) {
  const date = new Date(seconds * 1000)
  if (date.toDateString() === new Date().toDateString()) return date.toLocaleTimeString([], { hour12: false })
  return date.toLocaleString([], { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hour12: false })
}

function renderDevices (sessions) {
  const items = sessions.map((device) => {
    const item = document.createElement('li')
    item.className = device.current ? 'device current' : 'device'
    item.dataset.sid = device.sid
    item.innerHTML = '<div class="device-main"><span class="device-name"></span></div><p class="device-times muted small"></p>'
    const name = item.querySelector('.device-name')
    name.textContent = deviceName(device.userAgent)
    name.title = device.userAgent ?? ''
    if (device.current) {
      const badge = document.createElement('span')
      badge.className = 'badge this-device'
      badge.textContent = 'This device'
      item.querySelector('.device-main').append(badge)
    } else {
      const button = document.createElement('button')
      button.type = 'button'
      button.className = 'revoke small-button'
      button.textContent = 'Sign out'
      button.addEventListener('click', () => revokeDevice(device.sid, name.textContent))
      item.append(button)
    }
    item.querySelector('.device-times').textContent =
      `Signed in ${when(device.authTime)} · last active ${when(device.lastSeenAt)} · ends ${when(device.expiresAt)}`
    return item
  })
  $('devices').replaceChildren(...items)
  $('devices').dataset.count = sessions.length
  $('revoke-others').disabled = !sessions.some((device) => !device.current)
}

async function loadDevices () {
  const answer = await send('GET', '/api/sessions')
  if (answer.ok) return renderDevices(answer.body.sessions)
  log('GET /api/sessions', answer.status, answer.body.code ?? answer.body.message)
  if (sessionOver(answer)) showSignedOut(reasons[answer.body.code])
}

async function revokeDevice (sid, name) {
  const answer = await send('POST', `/api/sessions/${encodeURIComponent(sid)}/revoke`)
  log('POST …/revoke', answer.status, answer.ok ? `Signed out: ${name}` : answer.body.code ?? answer.body.message)
  if (sessionOver(answer)) return showSignedOut(reasons[answer.body.code])
  await loadDevices()
}

$('refresh-devices').addEventListener('click', loadDevices)

$('revoke-others').addEventListener('click', async () => {
  const answer = await send('POST', '/api/sessions/revoke-others')
  log('POST …/revoke-others', answer.status, answer.ok ? `Signed out ${answer.body.revoked} other device(s)` : answer.body.code ?? answer.body.message)
  if (sessionOver(answer)) return showSignedOut(reasons[answer.body.code])
  await loadDevices()
})

// The sensitive action and its re-authentication --------------------------------------------------------

/**
 * Asks for the password in the dialog and signs in again through /api/reauth (a new login, same remember-me
 * choice). Resolves to true once signed in again, false when cancelled or when the session is over.
 */
function confirmPassword () {
  const dialog = $('reauth')
  $('reauth-password').value = ''
  $('reauth-error').hidden = true
  dialog.showModal()
  return new Promise((resolve) => {
    const done = (result) => {
      dialog.removeEventListener('close', cancelled)
      $('reauth-form').removeEventListener('submit', submit)
      if (dialog.open) dialog.close()
      resolve(result)
    }
    const cancelled = () => done(false)
    async function submit (event) {
      event.preventDefault()
      const answer = await send('POST', '/api/reauth', { password: $('reauth-password').value })
      log('POST /api/reauth', answer.status, answer.ok ? 'Signed in again: a new login' : answer.body.code ?? answer.body.message)
      if (answer.ok) {
        showSignedIn(answer.body)
        loadDevices()
        return done(true)
      }
      if (sessionOver(answer)) {
        done(false)
        return showSignedOut(reasons[answer.body.code])
      }
      $('reauth-error').textContent = answer.body.message
      $('reauth-error').hidden = false
      $('reauth-password').select()
    }
    dialog.addEventListener('close', cancelled)
    $('reauth-form').addEventListener('submit', submit)
  })
}

$('reauth-cancel').addEventListener('click', () => $('reauth').close())

/** Changes the e-mail; a login too old for it asks for the password once, then tries again. */
async function changeEmail (email, retried = false) {
  const answer = await send('POST', '/api/email', { email })
  if (answer.ok) {
    log('POST /api/email', answer.status, `E-mail changed to ${answer.body.email}`)
    $('email').textContent = answer.body.email
    $('new-email').value = ''
    $('email-note').textContent = `Changed to ${answer.body.email}.`
    return
  }
  log('POST /api/email', answer.status, answer.body.code ?? answer.body.message)
  if (answer.body.code === 'FST_TOKEN_COOKIE_REAUTH' && !retried) {
    $('email-note').textContent = `Your sign-in is older than ${words(session.reauth)}: confirm your password.`
    if (await confirmPassword()) return changeEmail(email, true)
    $('email-note').textContent = 'Not changed: the password was not confirmed.'
  } else if (sessionOver(answer)) {
    showSignedOut(reasons[answer.body.code])
  } else {
    $('email-note').textContent = `Not changed: ${answer.body.message}`
  }
}

$('email-form').addEventListener('submit', (event) => {
  event.preventDefault()
  changeEmail($('new-email').value)
})

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const response = await fetch('/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: $('username').value, password: $('password').value, remember: $('remember').checked })
  })
  const body = await response.json()
  if (!response.ok) return showSignedOut(body.message)
  $('password').value = ''
  session = null
  showSignedIn(body)
  log('POST /login', response.status, body.policy === 'sliding'
    ? 'Signed in: sliding session in a browser-session cookie'
    : `Signed in: persistent cookie for ${words(body.lifetime.idle)}`)
})

for (const chip of document.querySelectorAll('.user-chip')) {
  chip.addEventListener('click', () => {
    $('username').value = chip.dataset.username
    $('password').value = chip.dataset.password
  })
}

$('call-api').addEventListener('click', () => callApi('/api/me', apiNote))

$('poll').addEventListener('click', () => callApi('/api/poll', () => 'OK; a poll never extends the session'))

$('logout').addEventListener('click', async () => {
  await fetch('/logout', { method: 'POST' })
  showSignedOut('You signed out: the cookie is gone from this browser.')
})

// Ask without extending the session whether we are signed in.
const response = await fetch('/api/poll')
if (response.ok) showSignedIn(await response.json())
else if (session === null) showSignedOut()
setInterval(render, 250)
render()
