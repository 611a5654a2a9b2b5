// jsdom has no MessageChannel, which react-dom/server (imported by @grafana/ui) needs at load time.
// Node's own would keep the worker alive, so a minimal in-process pair of ports is used instead.
if (typeof global.MessageChannel === 'undefined') {
  class Port {
    constructor() {
      this.onmessage = null;
      this.other = null;
    }
    postMessage(data) {
      const target = this.other;
      setTimeout(() => target && target.onmessage && target.onmessage({ data }), 0);
    }
    start() {}
    close() {}
    addEventListener(type, listener) {
      if (type === 'message') {
        this.onmessage = listener;
      }
    }
    removeEventListener() {}
  }
  class MessageChannel {
    constructor() {
      this.port1 = new Port();
      this.port2 = new Port();
      this.port1.other = this.port2;
      this.port2.other = this.port1;
    }
  }
  global.MessageChannel = MessageChannel;
}
