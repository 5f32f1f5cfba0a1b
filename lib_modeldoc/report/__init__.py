"""What an inspection found, and its words for people: report data, rendering, advice ids, units."""
