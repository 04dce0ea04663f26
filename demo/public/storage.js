// The web-storage flow: the token comes in the login response body, lives in sessionStorage (this tab
// only) and goes out as `Authorization: Bearer`. `credentials: 'omit'` keeps cookies out of it entirely:
// the login's Set-Cookie is ignored and no cookie is sent. The demo registers the plugin with `bearer: true`.
/* global sessionStorage */

const $ = (id) => document.getElementById(id)
const key = 'access_token'

function show (message) {
  const token = sessionStorage.getItem(key)
  document.body.dataset.state = token === null ? 'signed-out' : 'signed-in'
  $('signed-in').hidden = token === null
  $('signed-out').hidden = token !== null
  $('message').textContent = message ?? ''
  $('message').hidden = !message
  if (token === null) return
  // The payload is readable by anyone holding the token (it is signed, not encrypted).
  const payload = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')))
  $('who').textContent = payload.name
  $('avatar').textContent = payload.name.slice(0, 1)
  $('token').textContent = token
}

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const response = await fetch('/login', {
    method: 'POST',
    credentials: 'omit',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: $('username').value, password: $('password').value })
  })
  const body = await response.json()
  if (!response.ok) return show(body.message)
  sessionStorage.setItem(key, body.access_token)
  $('result').textContent = 'Signed in. Call the API to use the token.'
  show()
})

$('call-api').addEventListener('click', async () => {
  const response = await fetch('/api/me', {
    credentials: 'omit',
    headers: { authorization: `Bearer ${sessionStorage.getItem(key)}` }
  })
  const body = await response.json()
  $('result').textContent = `${response.status} ${response.statusText}\n${JSON.stringify(body, null, 2)}`
  $('result').dataset.status = response.status
  if (response.status === 401) {
    sessionStorage.removeItem(key)
    show(`${body.message} (${body.code}): signed out.`)
  }
})

// Dropping the token from storage is not enough: a copy (in a log, another tool, an XSS payload) would stay
// valid until its exp. POST /logout with the token revokes its session on the server first.
$('forget').addEventListener('click', async () => {
  const token = sessionStorage.getItem(key)
  const response = await fetch('/logout', {
    method: 'POST',
    credentials: 'omit',
    headers: { authorization: `Bearer ${token}` }
  }).catch(() => null)
  sessionStorage.removeItem(key)
  $('result').textContent = ''
  delete $('result').dataset.status
  show(response?.ok
    ? 'Token revoked on the server and removed from sessionStorage: a copy of it no longer works.'
    : `Token removed from sessionStorage, but the server did not revoke it (${response === null ? 'no answer' : response.status}): a copy still works until it expires.`)
})

for (const chip of document.querySelectorAll('.user-chip')) {
  chip.addEventListener('click', () => {
    $('username').value = chip.dataset.username
    $('password').value = chip.dataset.password
  })
}

show()
