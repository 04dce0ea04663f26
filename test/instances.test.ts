// Many instances on one Redis: app processes (test/helpers/instance.js, the BUILT package: `npm run build`
// first; `npm test` does) on ports of their own, one secret, one redis-server started here. Real time throughout.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { checkHealthy, claimsOf, get, haveBuild, logIn, outcome, request, startInstance, storeLines, until, type Instance } from './helpers/instances.js'
import { haveRedis, startRedis } from './helpers/redis.js'

if (haveRedis()) {
  if (!haveBuild()) throw new Error('instances.test.ts runs the built package: npm run build first')

  t.test('three instances, one Redis: renewals travel, logout holds everywhere at once', async (t) => {
    const redis = await startRedis(t)
    // maxAge 10 s, renewAfter 0.1: a token is renewed from one second after it was issued.
    // A generous storeTimeout: a loaded machine must not turn a slow answer into a 503 here.
    const env = { MAX_AGE: '10s', ABSOLUTE_MAX_AGE: '1m', RENEW_AFTER: '0.1', STORE_TIMEOUT: '1s' }
    const [a, b, c] = await Promise.all(['A', 'B', 'C'].map((name) => startInstance(t, name, redis, env)))

    const first = await logIn(a, 'alice')
    const { sid, iat } = claimsOf(first)
    const bob = await logIn(b, 'bob')
    const used = await get(b, '/private', first)
    t.same(used.body, { sub: 'alice', sid }, 'logged in on A, used on B')

    // Wait for the next second: then every instance renews the first token.
    await until(async () => Date.now() / 1000 >= iat + 1, 2000)
    const tokens: Record<string, string> = { first }
    for (const instance of [c, a, b]) {
      const answer = await get(instance, '/private', first)
      t.equal(answer.status, 200)
      t.ok(answer.cookie, `renewed on ${instance.name}`)
      tokens[instance.name] = answer.cookie!
      t.equal(claimsOf(answer.cookie!).sid, sid, 'same session')
      t.ok(claimsOf(answer.cookie!).iat > iat, 'a new iat')
    }
    t.equal(new Set(Object.values(tokens).map((token) => claimsOf(token).jti)).size, 4, 'every token its own jti')
    for (const from of [a, b, c]) {
      for (const to of [a, b, c].filter((instance) => instance !== from)) {
        const answer = await get(to, '/private', tokens[from.name])
        t.same(answer.body, { sub: 'alice', sid }, `renewed on ${from.name}, accepted on ${to.name}`)
      }
    }

    const logout = await request(a, 'POST', '/logout', tokens.A)
    t.equal(logout.status, 200)
    t.equal(logout.cookie, '', 'logout on A clears the cookie')
    const loggedOutAt = performance.now()
    const rejections = await Promise.all([b, c].flatMap((instance) => Object.entries(tokens).map(async ([name, token]) => {
      const answer = await get(instance, '/private', token)
      return { instance: instance.name, name, outcome: outcome(answer), cookie: answer.cookie }
    })))
    const elapsed = performance.now() - loggedOutAt
    for (const rejection of rejections) {
      t.equal(rejection.outcome, 'FST_TOKEN_COOKIE_REVOKED', `${rejection.instance} rejects the token ${rejection.name === 'first' ? 'of the login' : `renewed on ${rejection.name}`}`)
      t.equal(rejection.cookie, '', 'and clears its cookie')
    }
    // The rejections above are what "at once" means: every request was sent after the logout answered. The time
    // only guards against answers held back; a loaded machine takes its time over 12 requests to two processes.
    t.ok(elapsed < 5000, `B and C rejected all ${rejections.length} tokens ${Math.round(elapsed)} ms after the logout answered`)
    for (const instance of [a, b, c]) t.equal(outcome(await get(instance, '/private', bob)), 200, `bob's session is untouched on ${instance.name}`)

    // Log out everywhere on B: carol's sessions on A and C go too.
    const carol = [await logIn(a, 'carol'), await logIn(c, 'carol')]
    t.equal(outcome(await request(b, 'POST', '/logout-everywhere', carol[0])), 200)
    for (const instance of [a, b, c]) {
      for (const token of carol) t.equal(outcome(await get(instance, '/private', token)), 'FST_TOKEN_COOKIE_REVOKED', `carol rejected on ${instance.name}`)
    }
    t.equal(outcome(await get(c, '/private', bob)), 200, 'bob still in')
    checkHealthy(t, [a, b, c])
  })

  t.test('Redis stops during traffic: 503 (or failOpen), no crash; back without a restart, old revocations kept', async (t) => {
    // Data on disk (appendfsync always), so a Redis that is killed and started again keeps its revocations.
    const redis = await startRedis(t, { persist: true })
    // A and B use ioredis as it comes (commands wait in its offline queue; storeTimeout answers); C fails commands
    // at once while disconnected; D is failOpen. storeTimeout 1 s, not 100 ms: a loaded machine's pauses are no outage.
    const timeout = { STORE_TIMEOUT: '1s' }
    const [a, b, c, d] = await Promise.all([
      startInstance(t, 'A', redis, timeout),
      startInstance(t, 'B', redis, timeout),
      startInstance(t, 'C', redis, { ...timeout, OFFLINE_QUEUE: '0' }),
      startInstance(t, 'D', redis, { ...timeout, FAIL_OPEN: '1' })
    ])
    const closed = [a, b, c]
    const token = await logIn(a, 'dave')
    const revoked = await logIn(b, 'erin')
    t.equal(outcome(await request(c, 'POST', '/logout', revoked)), 200, 'erin logs out before the outage')
    for (const instance of [a, b, c, d]) t.equal(outcome(await get(instance, '/private', token)), 200)

    // Traffic on every instance, protected and public, until the end of the test. Each answer is kept with the
    // phase its request was sent in and the phase it came back in: a request sent just before Redis is killed may
    // be answered 503, so only requests sent and answered within one phase say what that phase answers.
    type Seen = { instance: string, path: string, status: number, cookie: string | undefined, phase: string, ended: string }
    const seen: Seen[] = []
    let phase = 'before'
    const traffic = { running: true }
    const failures: unknown[] = []
    const trafficDone = Promise.all([a, b, c, d].map(async (instance) => {
      while (traffic.running) {
        for (const path of ['/private', '/public']) {
          const started = phase
          try {
            const answer = await get(instance, path, token)
            seen.push({ instance: instance.name, path, status: answer.status, cookie: answer.cookie, phase: started, ended: phase })
          } catch (error) {
            failures.push(error)
          }
        }
        await sleep(20)
      }
    }))
    t.teardown(() => { traffic.running = false })

    // Answers within a phase, per instance and path.
    const within = (name: string, which: string, path?: string): Seen[] =>
      seen.filter((entry) => entry.instance === name && entry.phase === which && entry.ended === which && (path === undefined || entry.path === path))
    const everyPath = (which: string) => async () => [a, b, c, d].every((instance) =>
      within(instance.name, which, '/private').length > 0 && within(instance.name, which, '/public').length > 0)
    t.ok(await until(everyPath('before'), 10_000), 'traffic on every instance before the outage')
    phase = 'down'
    await redis.stop('SIGKILL')
    t.ok(await until(async () => (await get(b, '/private', token)).status === 503, 10_000), 'protected routes answer 503 soon')
    const down = await Promise.all(closed.map(async (instance) => [instance, await get(instance, '/private', token), await get(instance, '/public', token)] as const))
    for (const [instance, privateRoute, publicRoute] of down) {
      t.equal(outcome(privateRoute), 'FST_TOKEN_COOKIE_STORE_UNAVAILABLE', `${instance.name}: 503 on a protected route`)
      t.equal(privateRoute.status, 503)
      t.equal(privateRoute.cookie, undefined, 'the cookie is kept')
      t.equal(publicRoute.status, 200, `${instance.name}: 200 on a public route`)
      t.equal(publicRoute.cookie, undefined, 'the cookie is kept')
    }
    t.equal(outcome(await get(d, '/private', token)), 200, 'failOpen: D lets the token pass')
    t.equal(outcome(await get(a, '/private')), 'FST_TOKEN_COOKIE_MISSING', 'no token, no store: 401')
    const newLogin = await logIn(c, 'frank')
    t.ok(newLogin, 'logins go on during the outage')
    // Traffic while down: enough requests on each instance to tell one warning per outage from one per request
    // (A, B and D wait storeTimeout, 1 s, on each protected request).
    const sentDown = (name: string): number => seen.filter((entry) => entry.instance === name && entry.phase === 'down').length
    t.ok(await until(async () => [a, b, d].every((instance) => sentDown(instance.name) >= 6), 30_000), 'traffic on every instance during the outage')

    await redis.start()
    phase = 'restarted'
    const recovered = await Promise.all([a, b, c, d].map(async (instance) => await until(async () => outcome(await get(instance, '/private', token)) === 200, 10_000)))
    for (const [index, instance] of [a, b, c, d].entries()) t.ok(recovered[index], `${instance.name} recovers without a restart`)
    phase = 'after'
    for (const instance of [a, b, c, d]) {
      t.equal(outcome(await get(instance, '/private', revoked)), 'FST_TOKEN_COOKIE_REVOKED', `${instance.name}: erin's logout from before the outage holds`)
      t.equal(outcome(await get(instance, '/private', newLogin)), 200, `${instance.name}: frank's login from the outage works`)
    }
    t.ok(await until(everyPath('after'), 10_000), 'traffic on every instance once recovered')
    traffic.running = false
    await trafficDone

    t.same(failures, [], 'every request was answered: no instance went down')
    const statuses = (filter: (entry: typeof seen[number]) => boolean): number[] => [...new Set(seen.filter(filter).map((entry) => entry.status))].sort()
    t.same(statuses((entry) => entry.instance !== 'D' && entry.path === '/private'), [200, 503], 'protected routes: 200, or 503 while Redis was down')
    t.same(statuses((entry) => entry.path === '/public'), [200], 'public routes: always 200')
    t.same(statuses((entry) => entry.instance === 'D'), [200], 'failOpen: always 200')
    t.same(statuses((entry) => entry.phase === 'before' && entry.ended === 'before'), [200], 'all 200 before the outage')
    t.same(statuses((entry) => entry.phase === 'after' && entry.ended === 'after'), [200], 'and all 200 once recovered')
    t.same(seen.filter((entry) => entry.cookie !== undefined), [], 'the cookie was never cleared nor renewed')
    t.ok(seen.filter((entry) => entry.phase === 'down').length > 20, `traffic during the outage (${seen.length} requests in all)`)

    // An instance's log lines come through a pipe, apart from its HTTP answers: they may come after the answers
    // that followed them. Wait until every outage logged has its end logged (or the deadline), then count.
    const settled = (instance: Instance): boolean => storeLines(instance, 30).length >= 1 && storeLines(instance, 30).length === storeLines(instance, 40).length
    await until(async () => [a, b, c, d].every(settled), 10_000)
    // C fails fast: exactly one warning and one note. The others decide by storeTimeout, and a machine that stalls
    // past it could log a short outage of its own: each outage they log has its end logged, far fewer than requests.
    t.equal(storeLines(c, 40).length, 1, 'C logged the outage once at warn')
    t.equal(storeLines(c, 30).length, 1, 'C logged its end once at info')
    for (const instance of [a, b, d]) {
      const warnings = storeLines(instance, 40).length
      const during = sentDown(instance.name)
      t.ok(warnings >= 1, `${instance.name} logged the outage at warn`)
      t.equal(storeLines(instance, 30).length, warnings, `${instance.name} logged its end at info`)
      t.ok(warnings * 3 <= during, `${instance.name}: ${warnings} warning(s) for ${during} requests during the outage`)
    }
    checkHealthy(t, [a, b, c, d])
  })
}
