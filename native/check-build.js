// Run after the addon build: fail the install loudly if the addon is missing.
const path = require('path');
const file = path.join(__dirname, 'build', 'Release', 'passenger_native.node');
try {
  require(file);
} catch (e) {
  console.error(`\nThe native addon did not build (${file}).\nIt needs python3, make and g++ with Node's headers (node-gyp). ${e.message}\n`);
  process.exit(1);
}
