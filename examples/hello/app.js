// An unmodified Node app: it listens on port 3000 (or $PORT). Under
// `passenger start` its listen() goes to the socket the agent chose.
const http = require('http');

let hits = 0;
const server = http.createServer((req, res) => {
  hits++;
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end(`Hello from process ${process.pid} (request ${hits}, environment ${process.env.NODE_ENV})\n`);
});
server.listen(process.env.PORT || 3000, () => console.log(`hello app listening (pid ${process.pid})`));
