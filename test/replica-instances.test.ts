// Many instances with redisStore({ replica: true }) on one Redis: app processes (test/helpers/instance.js, the BUILT
// package) that check revocations in their own memory. How soon a revocation holds everywhere, a start after
// revocations, Redis killed under traffic, one instance's network cut, an instance restart. Real time throughout.
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { checkHealthy, get, haveBuild, logIn, outcome, request, startInstance, tcpProxy, until, type Instance } from './helpers/instances.js'
import { haveRedis, startRedis, type RedisServer } from './helpers/redis.js'

const revokedCode = 'FST_TOKEN_COOKIE_REVOKED'
const replica = { REPLICA: '1', STORE_TIMEOUT: '1s' }

/** Polls `instance` as fast as it answers until it refuses `token`; resolves to when it did (performance.now()). */
async function refusedAt (instance: Instance, token: string, deadline: number): Promise<number> {
  for (;;) {
    if (outcome(await get(instance, '/private', token)) === revokedCode) return performance.now()
    if (performance.now() > deadline) throw new Error(`${instance.name} still accepts the token`)
  }
}

/** Milliseconds from the revoking response until every instance refuses the token. */
async function spread (instances: Instance[], token: string, revoke: () => Promise<unknown>): Promise<number> {
  await revoke()
  const answered = performance.now()
  const times = await Promise.all(instances.map(async (instance) => await refusedAt(instance, token, answered + 5000)))
  return Math.max(...times) - answered
}

const percentile = (sorted: number[], share: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(share * sorted.length) - 1)]

/** Protected and public requests on every instance until `stop()`; what each answered, and in which phase. */
function traffic (instances: Instance[], token: string, phase: { name: string }) {
  type Seen = { instance: string, path: string, status: number, phase: string, ended: string }
  const seen: Seen[] = []
  const failures: unknown[] = []
  const state = { running: true }
  const done = Promise.all(instances.map(async (instance) => {
    while (state.running) {
      for (const path of ['/private', '/public']) {
        const started = phase.name
        try {
          seen.push({ instance: instance.name, path, status: (await get(instance, path, token)).status, phase: started, ended: phase.name })
        } catch (error) {
          failures.push(error)
        }
      }
      await sleep(10)
    }
  }))
  return { seen, failures, stop: async () => { state.running = false; await done } }
}

async function fleet (t: Test, redis: RedisServer, env: Record<string, string> = {}): Promise<Instance[]> {
  return await Promise.all(['A', 'B', 'C'].map(async (name) => await startInstance(t, name, redis, { ...replica, ...env })))
}

if (haveRedis()) {
  if (!haveBuild()) throw new Error('replica-instances.test.ts runs the built package: npm run build first')

  t.test('three replicas: a logout on A and a revokeUser on B hold on all three within milliseconds', async (t) => {
    const redis = await startRedis(t)
    const instances = await fleet(t, redis)
    const [a, b, c] = instances
    // A plain store (no replica) on the same Redis: a mixed fleet sees the same revocations.
    const plain = await startInstance(t, 'D', redis, { STORE_TIMEOUT: '1s' })
    const samples: number[] = []
    // Timed on the three replicas; the plain instance is asked once each time, after them.
    const refused = async (token: string): Promise<void> => { t.equal(outcome(await get(plain, '/private', token)), revokedCode) }
    // 101 revocations: the 99th percentile is the second slowest, not one stall of a shared machine.
    for (let round = 0; round < 50; round++) {
      const token = await logIn(c, `user-${round}`)
      for (const instance of [...instances, plain]) t.equal(outcome(await get(instance, '/private', token)), 200)
      samples.push(await spread(instances, token, async () => await request(a, 'POST', '/logout', token)))
      await refused(token)
      const other = await logIn(a, `other-${round}`)
      samples.push(await spread(instances, other, async () => await request(b, 'POST', '/revoke-user', undefined, { sub: `other-${round}` })))
      await refused(other)
    }
    const token = await logIn(a, 'from-d')
    samples.push(await spread(instances, token, async () => await request(plain, 'POST', '/logout', token)))
    const sorted = [...samples].sort((x, y) => x - y)
    const [p50, p99] = [percentile(sorted, 0.5), percentile(sorted, 0.99)]
    t.comment(`${samples.length} revocations, from the revoking response until all three replicas refuse: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms`)
    t.ok(p99 < 50, `p99 ${p99.toFixed(1)} ms < 50 ms`)
    t.equal(outcome(await get(c, '/private', await logIn(b, 'user-0'))), 200, 'a new login of a revoked user works')
    checkHealthy(t, [...instances, plain])
  })

  t.test('an instance started after revocations enforces them on its very first request', async (t) => {
    const redis = await startRedis(t)
    const a = await startInstance(t, 'A', redis, replica)
    const revoked = await logIn(a, 'ida')
    const user = await logIn(a, 'jon')
    t.equal(outcome(await request(a, 'POST', '/logout', revoked)), 200)
    t.equal(outcome(await request(a, 'POST', '/revoke-user', undefined, { sub: 'jon' })), 200)
    const fine = await logIn(a, 'kim')
    const late = await startInstance(t, 'B', redis, replica)
    t.equal(outcome(await get(late, '/private', revoked)), revokedCode, 'the logout, on the first request')
    t.equal(outcome(await get(late, '/private', user)), revokedCode, 'the user revocation')
    t.equal(outcome(await get(late, '/private', fine)), 200)
    checkHealthy(t, [a, late])
  })

  t.test('Redis killed under traffic: 503 after maxLag, public routes on, failOpen passes; all recover, revocations kept', async (t) => {
    const redis = await startRedis(t, { persist: true })
    const [a, b, c] = await fleet(t, redis, { MAX_LAG: '500ms' })
    const open = await startInstance(t, 'D', redis, { ...replica, MAX_LAG: '500ms', FAIL_OPEN: '1' })
    const closed = [a, b, c]
    const token = await logIn(a, 'lea')
    const revoked = await logIn(b, 'max')
    t.equal(outcome(await request(c, 'POST', '/logout', revoked)), 200, 'max logs out before the outage')
    t.ok(await until(async () => outcome(await get(open, '/private', revoked)) === revokedCode, 2000))
    const phase = { name: 'before' }
    const load = traffic([a, b, c, open], token, phase)
    await sleep(300)
    phase.name = 'down'
    const killed = performance.now()
    await redis.stop('SIGKILL')
    t.ok(await until(async () => (await get(a, '/private', token)).status === 503, 5000), 'protected routes answer 503')
    t.ok(performance.now() - killed >= 300, `not before maxLag (${Math.round(performance.now() - killed)} ms)`)
    for (const instance of closed) {
      t.ok(await until(async () => (await get(instance, '/private', token)).status === 503, 5000), `${instance.name}: 503 on a protected route`)
      t.equal((await get(instance, '/public', token)).status, 200, `${instance.name}: 200 on a public route`)
    }
    t.equal(outcome(await get(open, '/private', token)), 200, 'failOpen: D lets tokens pass')
    await sleep(500)
    await redis.start()
    phase.name = 'restarted'
    for (const instance of [...closed, open]) {
      t.ok(await until(async () => outcome(await get(instance, '/private', token)) === 200, 10_000), `${instance.name} recovers without a restart`)
    }
    phase.name = 'after'
    for (const instance of [...closed, open]) t.equal(outcome(await get(instance, '/private', revoked)), revokedCode, `${instance.name}: the logout from before holds`)
    const after = await logIn(c, 'ned')
    t.equal(outcome(await request(a, 'POST', '/logout', after)), 200)
    for (const instance of [...closed, open]) t.ok(await until(async () => outcome(await get(instance, '/private', after)) === revokedCode, 2000), `${instance.name} follows again`)
    await sleep(200)
    await load.stop()
    t.same(load.failures, [], 'every request was answered')
    const statuses = (filter: (entry: typeof load.seen[number]) => boolean): number[] => [...new Set(load.seen.filter(filter).map((entry) => entry.status))].sort()
    t.same(statuses((entry) => entry.instance !== 'D' && entry.path === '/private'), [200, 503], 'protected: 200, or 503 while Redis was down')
    t.same(statuses((entry) => entry.path === '/public'), [200], 'public routes: always 200')
    t.same(statuses((entry) => entry.instance === 'D'), [200], 'failOpen: always 200')
    t.same(statuses((entry) => entry.phase === 'after' && entry.ended === 'after'), [200], 'all 200 once recovered')
    checkHealthy(t, [...closed, open])
  })

  t.test('one instance cut from Redis while another revokes: it enforces the revocation once healed; a restart reloads', async (t) => {
    const redis = await startRedis(t)
    const proxy = await tcpProxy(t, redis.port)
    const a = await startInstance(t, 'A', redis, { ...replica, MAX_LAG: '300ms' })
    const cutEnv = { ...replica, MAX_LAG: '300ms' }
    let c = await startInstance(t, 'C', { port: proxy.port }, cutEnv)
    const open = await startInstance(t, 'D', { port: proxy.port }, { ...cutEnv, FAIL_OPEN: '1' })
    const token = await logIn(a, 'ola')
    const user = await logIn(a, 'pia')
    for (const instance of [c, open]) t.equal(outcome(await get(instance, '/private', token)), 200)
    await proxy.cut()
    t.equal(outcome(await request(a, 'POST', '/logout', token)), 200, 'A revokes during the cut')
    t.equal(outcome(await request(a, 'POST', '/revoke-user', undefined, { sub: 'pia' })), 200)
    t.ok(await until(async () => (await get(c, '/private', token)).status === 503, 3000), 'the cut instance cannot tell: 503')
    t.equal(outcome(await get(c, '/public', token)), 200, 'its public routes go on')
    t.equal(outcome(await get(open, '/private', token)), 200, 'failOpen: passes during the cut')
    await sleep(300)
    await proxy.heal()
    t.ok(await until(async () => outcome(await get(c, '/private', token)) === revokedCode, 10_000), 'healed: the cut instance enforces the logout')
    t.equal(outcome(await get(c, '/private', user)), revokedCode, 'and the user revocation')
    t.ok(await until(async () => outcome(await get(open, '/private', token)) === revokedCode, 10_000), 'failOpen: enforced once caught up')
    checkHealthy(t, [a, c, open])

    c.child.kill('SIGTERM')
    await new Promise((resolve) => c.child.once('exit', resolve))
    c = await startInstance(t, 'C again', redis, cutEnv)
    t.equal(outcome(await get(c, '/private', token)), revokedCode, 'a restarted instance reloads')
    t.equal(outcome(await get(c, '/private', user)), revokedCode)
    checkHealthy(t, [a, c])
  })
}
