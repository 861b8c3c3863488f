/** The live view's slow-viewer policy: a viewer behind skips frames and resumes at an IDR it asked for; never a delta after a gap. */
import { describe, expect, test } from "bun:test";
import { LIVE_MAX_BUFFERED, liveMessage, SlowViewerPolicy } from "../../src/capture/live-routes.ts";

describe("live view: slow viewers", () => {
  test("a viewer that keeps up gets every frame; nothing is asked of the encoder", () => {
    const p = new SlowViewerPolicy(1000);
    const got = [true, false, false, false].map((idr) => p.decide(idr, 0));
    expect(got).toEqual(Array(4).fill({ send: true, requestIdr: false }));
    expect(p.skipped).toBe(0);
  });

  test("behind: frames are skipped while the queue is long; after it drains deltas wait for the IDR asked for once", () => {
    const p = new SlowViewerPolicy(1000);
    expect(p.decide(false, 0)).toEqual({ send: true, requestIdr: false });
    expect(p.decide(false, 5000)).toEqual({ send: false, requestIdr: false });
    expect(p.decide(false, 5000)).toEqual({ send: false, requestIdr: false });
    // drained: a delta would follow a gap
    expect(p.decide(false, 10)).toEqual({ send: false, requestIdr: true });
    expect(p.decide(false, 10)).toEqual({ send: false, requestIdr: false });
    expect(p.decide(true, 10)).toEqual({ send: true, requestIdr: false });
    expect(p.decide(false, 10)).toEqual({ send: true, requestIdr: false });
    expect(p.skipped).toBe(4);
  });

  test("the IDR asked for, skipped because the queue filled again, is asked for again after the next drain", () => {
    const p = new SlowViewerPolicy(1000);
    p.decide(false, 5000);
    expect(p.decide(false, 0)).toEqual({ send: false, requestIdr: true });
    expect(p.decide(true, 5000)).toEqual({ send: false, requestIdr: false });
    expect(p.decide(false, 0)).toEqual({ send: false, requestIdr: true });
    expect(p.decide(true, 0)).toEqual({ send: true, requestIdr: false });
    expect(new SlowViewerPolicy().decide(false, LIVE_MAX_BUFFERED)).toEqual({ send: true, requestIdr: false });
  });

  test("one binary message per access unit: flags, width and height big endian, then the unit", () => {
    const m = liveMessage({ idr: true, width: 1920, height: 1080, data: new Uint8Array([0, 0, 0, 1, 0x67]) });
    expect([...m]).toEqual([1, 0x07, 0x80, 0x04, 0x38, 0, 0, 0, 1, 0x67]);
    expect(liveMessage({ idr: false, width: 2, height: 3, data: new Uint8Array(0) })[0]).toBe(0);
  });
});
