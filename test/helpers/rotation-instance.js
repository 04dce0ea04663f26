// One app instance of a rolling deploy: the BUILT package (npm run build), no store, the key list it was
// deployed with. rolling-deploy.test.ts starts three of these behind nginx and restarts them one by one.
//
// Environment: PORT (required: the same port across restarts, as nginx knows it), KEYS (required: a JSON list
// of { kid, secret, signFrom? }), MAX_AGE, RENEW_AFTER. Prints `{"listening":<port>}` on stdout once it listens.
import Fastify from 'fastify'
import tokenCookie from 'fastify-token-cookie'

const env = process.env
const app = Fastify({ logger: { level: 'warn' } })
await app.register(tokenCookie, {
  secret: JSON.parse(env.KEYS),
  maxAge: env.MAX_AGE ?? '30m',
  absoluteMaxAge: '1h',
  renewAfter: Number(env.RENEW_AFTER ?? 0.5),
  // nginx and the clients speak plain http on 127.0.0.1.
  cookie: { secure: false }
})

app.post('/login', async (request, reply) => ({ access_token: await reply.setTokenCookie({ sub: request.body.sub }) }))
app.get('/private', { preHandler: async (request) => { await request.verifyToken() } }, async (request) => ({ sub: request.user.sub }))

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}

await app.listen({ host: '127.0.0.1', port: Number(env.PORT) })
console.log(JSON.stringify({ listening: app.server.address().port }))
