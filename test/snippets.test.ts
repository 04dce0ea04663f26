// Every ```ts block of README.md and docs/*.md compiles under `strict`, as written, against the built package
// (`npm test` builds first). Each block is a module of its own (`.mts`: ESM, module nodenext) that imports
// 'fastify-token-cookie' by name: the files are virtual, placed in the repository, so the name resolves through
// package.json's "exports" (self-reference) to dist/esm, as an installed package would.
//
// The blocks are fragments of one app, the README's example. A small prelude declares what they take from it
// (`app`, `secret`, `checkPassword`…), and its FastifyJWT declaration, once, for every block that does not
// declare its own. Module augmentation is global to a compilation, so a block that declares FastifyJWT itself
// is a whole app: it gets a program of its own, with the helpers but without the prelude's declaration.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import ts from 'typescript'

t.setTimeout(120_000)

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

// Declared, not defined: the snippets only need their types. A global script, so a block's own `const app`
// or `function requiredEnv` shadows it instead of clashing.
const helpers = `
declare const app: import('fastify').FastifyInstance
declare const secret: string
declare const handler: import('fastify').RouteHandlerMethod
declare const bannedUsers: Set<string>
declare function requiredEnv (name: string): string
declare function checkPassword (body: unknown): Promise<{ id: string, name: string }>
declare function changePassword (sub: string, body: unknown): Promise<void>
declare function authenticate (request: import('fastify').FastifyRequest): Promise<void>
declare function listUsers (): Promise<Array<{ sub: string, name: string }>>
`

// The README example's declaration, for the blocks that use `request.user` or a typed payload without repeating it.
const sessionTypes = `
declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: { sub: string, name: string }
    user: { sub: string, name: string }
  }
}
export {}
`

interface Snippet {
  /** Where the block is, e.g. `docs/lifetimes.md:42` (its first line of code). */
  source: string
  markdown: string
  firstLine: number
  code: string
  /** The virtual module it is compiled as. */
  fileName: string
}

const compilerOptions: ts.CompilerOptions = {
  strict: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  types: ['node'],
  skipLibCheck: true,
  noEmit: true
}

const virtualDir = join(root, '.snippets')
const helpersFile = join(virtualDir, 'helpers.d.ts')
const sessionTypesFile = join(virtualDir, 'session-types.mts')

function markdownFiles (): string[] {
  const docs = readdirSync(join(root, 'docs')).filter((file) => file.endsWith('.md')).sort().map((file) => join('docs', file))
  return ['README.md', ...docs]
}

/** The ```ts (or ```typescript) blocks of a markdown file. */
function snippetsOf (markdown: string): Snippet[] {
  const lines = readFileSync(join(root, markdown), 'utf8').split('\n')
  const snippets: Snippet[] = []
  for (let index = 0; index < lines.length; index++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[index] ?? '')) continue
    const start = index + 1
    let end = start
    while (end < lines.length && !/^```\s*$/.test(lines[end] ?? '')) end++
    const firstLine = start + 1
    snippets.push({
      source: `${markdown}:${firstLine}`,
      markdown,
      firstLine,
      code: lines.slice(start, end).join('\n') + '\n',
      fileName: join(virtualDir, `${markdown.replace(/[/.]/g, '-')}-${firstLine}.mts`)
    })
    index = end
  }
  return snippets
}

const declaresSessionTypes = (snippet: Snippet): boolean => /declare module ['"]@fastify\/jwt['"]/.test(snippet.code)

// Parsed files are shared by the programs: the libraries are parsed once.
const parsed = new Map<string, ts.SourceFile | undefined>()
function createHost (virtual: Map<string, string>): ts.CompilerHost {
  const host = ts.createCompilerHost(compilerOptions)
  const { fileExists, readFile, getSourceFile } = host
  host.fileExists = (fileName) => virtual.has(fileName) || fileExists(fileName)
  host.readFile = (fileName) => virtual.get(fileName) ?? readFile(fileName)
  host.getSourceFile = (fileName, languageVersion, onError) => {
    const text = virtual.get(fileName)
    if (text !== undefined) return ts.createSourceFile(fileName, text, languageVersion, true)
    if (!parsed.has(fileName)) parsed.set(fileName, getSourceFile(fileName, languageVersion, onError))
    return parsed.get(fileName)
  }
  return host
}

/** The diagnostics of one program over `snippets`, each as `file:line:column message`, at the markdown's lines. */
function check (snippets: Snippet[], withSessionTypes: boolean): string[] {
  const virtual = new Map<string, string>([[helpersFile, helpers]])
  if (withSessionTypes) virtual.set(sessionTypesFile, sessionTypes)
  for (const snippet of snippets) virtual.set(snippet.fileName, snippet.code)
  const program = ts.createProgram([...virtual.keys()], compilerOptions, createHost(virtual))
  const byFile = new Map(snippets.map((snippet) => [snippet.fileName, snippet]))
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')
    if (diagnostic.file === undefined || diagnostic.start === undefined) return `TS${diagnostic.code}: ${message}`
    const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start)
    const snippet = byFile.get(diagnostic.file.fileName)
    const where = snippet === undefined
      ? `${relative(root, diagnostic.file.fileName)}:${line + 1}:${character + 1}`
      : `${snippet.markdown}:${snippet.firstLine + line}:${character + 1}`
    return `${where} TS${diagnostic.code}: ${message}`
  })
}

const snippets = markdownFiles().flatMap(snippetsOf)

t.test('the documentation has TypeScript blocks', async (t) => {
  t.ok(snippets.some((snippet) => snippet.markdown === 'README.md'), 'in the README')
  t.ok(snippets.some((snippet) => snippet.markdown.startsWith('docs/')), 'in docs/')
  t.ok(snippets.some(declaresSessionTypes), 'one of them declares the session types')
})

t.test('every ```ts block compiles under strict', async (t) => {
  const apps = snippets.filter(declaresSessionTypes)
  const fragments = snippets.filter((snippet) => !declaresSessionTypes(snippet))
  const errors = [
    ...check(fragments, true),
    ...apps.flatMap((snippet) => check([snippet], false))
  ]
  t.same(errors, [], `${snippets.length} blocks: ${fragments.length} fragments in one program, ${apps.length} apps on their own`)
})
