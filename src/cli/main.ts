/** The `tessera` command line: dispatches to the roles and client commands. */
const [command] = process.argv.slice(2);
process.stderr.write(`tessera: command not implemented yet: ${command ?? '(none)'}\n`);
process.exit(2);
