"""Pure analyses over record entry documents: the compliance report and the incident timeline.

Each reads entries as the store gives them (``entry_doc``) or as a record bundle holds them,
so it gives the same answer on the live database and on an exported copy. Nothing here
imports the store, the service, SQLAlchemy, FastAPI or Typer; matplotlib is imported only
when a chart is drawn.

- :mod:`deconflict.analysis.report`: the compliance report per party and period (lead times,
  acknowledgements, missed deadlines, escalations, line checks), its result types in
  :mod:`deconflict.analysis.report_types`; :mod:`deconflict.analysis.report_output` writes it
  as JSON, CSV, a PNG chart or a summary;
- :mod:`deconflict.analysis.timeline`: the incident timeline, the story around a place in a window.
"""
