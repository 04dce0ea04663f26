// The benchmark variants, in the order of a round: id (the argument of bench/server.js) and table label.
export const variants = [
  ['bare', '1. bare Fastify (ceiling)'],
  ['bare-control', '1b. bare Fastify again (control)'],
  ['jwt-cookie', '2. @fastify/jwt cookie verify'],
  ['secure-session', '3. @fastify/secure-session'],
  ['session', '4. @fastify/session rolling'],
  ['naive-sliding', '4b. naive sliding on @fastify/jwt'],
  ['plugin', '5. plugin, valid cookie'],
  ['plugin-sliding', '6. plugin, sliding 0.5, cookie jar'],
  ['plugin-renew-all', '7. plugin, renewAfter 0'],
  ['plugin-anonymous', '8. plugin, no cookie, public'],
  ['plugin-garbage', '9. plugin, garbage cookies'],
  ['plugin-distinct', '10. plugin, distinct tokens'],
  ['plugin-redis', '11. plugin, valid cookie, Redis revocation store'],
  ['plugin-redis-replica', '11b. plugin, valid cookie, Redis store with replica'],
  ['plugin-sessions', '12. plugin, 20,000 sessions round-robin'],
  ['plugin-encrypted', '13. plugin, valid cookie, encrypted']
]

/** The variants that need a redis-server. */
export const redisVariants = ['plugin-redis', 'plugin-redis-replica']

// 12: a pool of signed-in users, each token sent once every `sessions` requests (a busy instance behind a load
// balancer): signed once at start, the same pool every round, split between the connections.
export const defaultSessions = 20_000

/** The label of a variant, with the number of sessions of variant 12 when it is not the default 20,000. */
export function labelOf (label, sessions) {
  return sessions === defaultSessions ? label : label.replace('20,000', sessions.toLocaleString('en-US'))
}

// Reference rows of `npm run bench:instructions` only: what Fastify itself costs for the plugin's shape of request.
export const referenceVariants = [
  ['floor', 'floor: @fastify/cookie, two empty hooks, an async preHandler, a token-sized cookie'],
  ['bare-401', 'bare Fastify answering 401 from a preHandler']
]
