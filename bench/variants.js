// The benchmark variants, in the order of a round: id (the argument of bench/server.js) and table label.
export const variants = [
  ['bare', '1. bare Fastify (ceiling)'],
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
  ['plugin-redis', '11. plugin, valid cookie, Redis revocation store']
]
