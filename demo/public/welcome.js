// The public page: GET /api/hello greets a signed-in visitor by name and anybody else as a guest, with a
// 200 either way (the route verifies the token cookie with `optional: true`).

const $ = (id) => document.getElementById(id)

async function hello () {
  const response = await fetch('/api/hello')
  const body = await response.json()
  const signedIn = body.signedIn === true
  $('greeting').textContent = body.greeting
  $('avatar').textContent = signedIn ? body.greeting.replace(/^Hello, /, '').slice(0, 1) : '?'
  $('hello-line').textContent = signedIn
    ? `Signed in as @${body.user}: the token cookie came with the request, and was valid.`
    : 'Not signed in: no token cookie, or one that expired or was revoked.'
  $('hello-status').textContent = `GET /api/hello · ${response.status}`
  $('hello-status').className = `badge ${signedIn ? 'persistent' : 'sliding'}`
  $('hello-link').textContent = signedIn ? 'Go to your session' : 'Sign in'
  $('hello-body').textContent = JSON.stringify(body, null, 2)
  document.body.dataset.state = signedIn ? 'signed-in' : 'guest'
  $('hello').hidden = false
}

$('ask-again').addEventListener('click', hello)

await hello()
