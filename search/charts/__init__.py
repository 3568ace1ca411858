"""Plotly figures as plain dicts that Plotly.js draws (`Plotly.react(div, fig.data, fig.layout)`).

Pure figure builders: rows in, a strict-JSON figure dict out; no Django, no database, no plotly objects.
`accuracy` draws candidates' scores, `speedup` the parallel accounting of fits; `_utils` holds what they share.
"""
