"""Controllers (MIDI, OSC, tempo sources) that write to the parameter registry."""
