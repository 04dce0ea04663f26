// Typed sessions: the tsd tests of types/typed-sessions/, in a tsd program of their own. Their `declare module
// '@fastify/jwt'` is global to a compilation, so `npm run test:types` (types/*.test-d.ts, the untyped API) must
// not see it. Checks the built .d.ts: `npm test` builds first.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import tsd from 'tsd'
import t from 'tap'

t.setTimeout(120_000)

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

t.test('with a FastifyJWT declaration: setTokenCookie, verifyToken and request.user follow it', async (t) => {
  // tsd is CommonJS with `exports.default`: under Node's ESM the default import is the whole module.
  const diagnostics = await tsd.default({ cwd: root, testFiles: ['types/typed-sessions/*.test-d.ts'] })
  t.same(diagnostics.map((diagnostic) => `${diagnostic.fileName ?? ''}:${diagnostic.line ?? 0}:${diagnostic.column ?? 0} ${diagnostic.message}`), [])
})
