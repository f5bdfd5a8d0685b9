// Preloaded into the tslab kernel (scripts/tslab-kernel.sh). tslab 1.0.22 sends on its IOPub socket
// without waiting for the previous send; zeromq 6 delays the 513th send in a row without one that
// waited, and refuses any send while one is delayed ("Socket is busy writing"). The lessons' output
// was cut off after about 500 messages, or the kernel died. With a send timeout of 0 a publisher
// sends at once, every time; a PUB socket then drops what is over its high-water mark (1,000
// messages by default), so that limit is lifted too. Both are set before the socket binds: the
// high-water mark applies to connections made after it is set.
'use strict';
const zmq = require('zeromq');

const bind = zmq.Publisher.prototype.bind;
// Defined, not assigned: the inherited `bind` is read-only.
Object.defineProperty(zmq.Publisher.prototype, 'bind', {
  configurable: true,
  writable: true,
  value: function bindSendingAtOnce(...args) {
    this.sendTimeout = 0;
    this.sendHighWaterMark = 0;
    return bind.apply(this, args);
  },
});
