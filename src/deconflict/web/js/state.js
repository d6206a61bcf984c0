/* The page's one state object, and the service's clock. Panels read S; only data.js loads into it
 * (plus the time bar for mode/at/replay, the alarm for alarm/audio/beeps/sounded/silenced, sign-in for
 * the rest). With two readings every panel shares: is an activity over, is an instant in a window. */

export const S = {
  token: null, me: null, mech: null, party: null, offsetMs: 0, colours: {},
  key: null, // the party's own key, when it signs its own entries and loaded it here (signing.js): memory only
  zones: [], activities: [], conflicts: [], messages: [], lines: {}, templates: [], tracks: [], tracksRead: false,
  knownMessages: new Set(), seenRefs: new Set(), lastSeq: 0, lastHash: null, streamAbort: null,
  mode: 'live', at: null, replay: null, // time bar: 'live' | 'replay' (S.replay holds the record then) | 'planned'
  alarm: null, audio: null, beeps: 0,
  // What waits on our party (GET …/waiting), and what the alarm has already sounded for ("id:rung").
  waiting: { items: [] }, sounded: new Set(), silenced: false,
};

/* The service's time (GET /me gives its clock; S.offsetMs is kept up to date). */
export const serverNow = () => new Date(Date.now() + S.offsetMs);
export const isoMinute = (d) => d.toISOString().slice(0, 16) + ':00Z';
/* An activity cancelled or ended: off the map, nothing to amend or ask about. */
export const isOver = (a) => a.state === 'cancelled' || a.state === 'ended';
/* Is the instant `at` inside x's window, from x.start up to x.end (none: open-ended)? */
export const inWindowAt = (x, at) => new Date(x.start) <= at && (!x.end || at < new Date(x.end));
