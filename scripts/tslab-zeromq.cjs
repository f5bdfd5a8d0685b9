// Preloaded into the tslab kernel (scripts/tslab-kernel.sh). tslab 1.0.22 sends on its IOPub socket
// without waiting for the previous send; zeromq 6 delays the 513th send in a row without one that
// waited, and refuses any send while one is delayed ("Socket is busy writing"). The lessons' output
// was cut off after about 500 messages, or the kernel died. With a send timeout of 0 a publisher
// sends at once, every time (a PUB socket never blocks: it drops at its high-water mark instead).
'use strict';
const zmq = require('zeromq');

const send = zmq.Publisher.prototype.send;
const immediate = new WeakSet();
// Defined, not assigned: the inherited `send` is read-only.
Object.defineProperty(zmq.Publisher.prototype, 'send', {
  configurable: true,
  writable: true,
  value: function sendAtOnce(...args) {
    if (!immediate.has(this)) {
      this.sendTimeout = 0;
      immediate.add(this);
    }
    return send.apply(this, args);
  },
});
