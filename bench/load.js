// The load generator shared by bench/run.js and bench/profile.js: autocannon, in this process.
import autocannon from 'autocannon'
import Fastify from 'fastify'
import tokenCookie from 'fastify-token-cookie'

// Same secret as bench/server.js: the tokens of variant 10 are signed here, not in the measured server.
const secret = 'a-benchmark-secret-of-at-least-32-bytes!!'

/** Signs `count` tokens with the plugin itself, as logins would, in this process (not in the server measured). */
export async function mintTokens (count, prefix) {
  const app = Fastify()
  await app.register(tokenCookie, { secret })
  app.post('/mint', async (request, reply) => {
    const tokens = []
    for (let i = 0; i < request.body.count; i++) tokens.push(await reply.setTokenCookie({ sub: `${prefix}-${i}` }))
    return tokens
  })
  const response = await app.inject({ method: 'POST', url: '/mint', body: { count } })
  await app.close()
  return response.json().map((token) => `token=${token}`)
}

/**
 * One autocannon run against `client` (from the server's `prepare`): a fixed cookie, a list of cookies
 * (few: rotated by every connection; many: split between the connections, so that each is sent once in a while),
 * or a cookie jar (each connection a browser that keeps the cookie it is sent back).
 * Every connection also counts the responses that set a cookie, to check that renewal happens as designed.
 * With `amount`, it sends that many requests instead of loading for `seconds`.
 */
export async function load (port, client, seconds, connections = 50, { warmup = false, amount } = {}) {
  const headers = client.cookie ? { cookie: client.cookie } : {}
  const counts = { setCookie: 0, jarUpdates: 0, jarCleared: 0 }
  const few = client.cookies !== undefined && client.cookies.length <= 1000
  let nextConnection = 0
  function setupClient (connection) {
    if (client.cookies !== undefined && !few) {
      const share = Math.floor(client.cookies.length / connections)
      const first = (nextConnection++ % connections) * share
      connection.setRequests(client.cookies.slice(first, first + share).map((cookie) => ({ headers: { cookie } })))
    }
    connection.on('headers', ({ headers: raw }) => {
      for (let i = 0; i < raw.length; i += 2) {
        if (raw[i].length !== 10 || raw[i].toLowerCase() !== 'set-cookie') continue
        counts.setCookie++
        if (client.jar === undefined || !raw[i + 1].startsWith(`${client.jar}=`)) continue
        const pair = raw[i + 1].split(';')[0]
        if (pair === `${client.jar}=` || /;\s*max-age=0/i.test(raw[i + 1])) {
          counts.jarCleared++
        } else {
          counts.jarUpdates++
          connection.setHeaders({ cookie: pair })
        }
      }
    })
  }
  const options = {
    url: `http://127.0.0.1:${port}${client.path}`,
    connections,
    // A number of requests instead of a duration (bench/instructions.js: the server runs under callgrind).
    ...(amount === undefined ? { duration: seconds } : { amount }),
    headers,
    setupClient,
    // autocannon checks for the end of a run at each sample: 1 s samples make requests.average req/s,
    // shorter ones let a warm-up last less than a second (its numbers are not used).
    sampleInt: warmup ? 100 : 1000
  }
  if (few) options.requests = client.cookies.map((cookie) => ({ headers: { cookie } }))
  const cpu = process.cpuUsage()
  const result = await autocannon(options)
  const used = process.cpuUsage(cpu)
  return { result, counts, clientCpuUs: used.user + used.system }
}
