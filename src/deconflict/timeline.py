"""Transitional: moved to deconflict.analysis.timeline; deleted when every import uses the new home."""

from deconflict.analysis.timeline import event_to_json, incident_timeline, timeline_text, timeline_to_json

__all__ = ["event_to_json", "incident_timeline", "timeline_text", "timeline_to_json"]
