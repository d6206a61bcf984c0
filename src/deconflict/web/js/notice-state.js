/* What the notice form is doing, shared by its modules: the footprint being drawn, the activity
 * being amended (null for a new notice), and whether a send is under way. */

/* The footprint: mode 'circle' | 'polygon' | null; a circle's centre (L.LatLng) and radius in metres,
 * or a polygon's corners; done once the shape is complete (then its handles can move it). */
export const draw = { mode: null, centre: null, radius_m: null, points: [], done: false };

/* editing: the activity being amended ({ id, version, volumeId, rest: its other volumes as sent }) or
 * null; sending: a notice is being checked and sent (a check by itself waits). */
export const form = { editing: null, sending: false };
