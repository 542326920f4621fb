// The Loader and BatchWriter integration suites, in one process so that they share one
// embedded PGlite (starting one takes seconds); each suite also runs on Postgres through
// DATABASE_URL.
import './batch-loader.suite.js';
import './batch-writer.suite.js';
