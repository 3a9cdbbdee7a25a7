// Lints Cypher statements with Neo4j's own front end, offline.
// stdin: JSON {schema: {labels, relationshipTypes, propertyKeys},
//              languages: ["CYPHER 5", "CYPHER 25"],
//              statements: [{name, statement, parameters}]}
//   (a bare list of statements is accepted too: empty schema, Cypher 5)
// stdout: JSON [{name, diagnostics: [{language, severity, message, line, character}]}]
import { lintCypherQuery } from '@neo4j-cypher/language-support';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const { schema = {}, languages = ['CYPHER 5'], statements } = Array.isArray(input) ? { statements: input } : input;

const out = statements.map(({ name, statement, parameters = {} }) => ({
  name,
  diagnostics: languages.flatMap((language) => {
    // Each statement declares only its own parameters, so a typo in a $name is reported.
    const dbSchema = { ...schema, parameters, defaultLanguage: language };
    return lintCypherQuery(statement, dbSchema).diagnostics.map((d) => ({
      language,
      severity: d.severity,
      message: d.message,
      line: d.range.start.line + 1,
      character: d.range.start.character + 1,
    }));
  }),
}));
process.stdout.write(JSON.stringify(out, null, 1) + '\n');
