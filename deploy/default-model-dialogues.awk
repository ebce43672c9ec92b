# Turns every third chapter, Genesis to Acts, into a dialogue: verses alternate between "Human:"
# and "Assistant:" turns, each closed by "###", one conversation per line.
function flush_verse() { if (verse != "") { verses[n++] = verse; verse = "" } }
function flush_chapter(   i, line) {
  flush_verse()
  if (keep && n >= 2) {
    line = ""
    for (i = 0; i < n; i++) line = line (i % 2 == 0 ? "Human: " : "Assistant: ") verses[i] "###"
    print line
  }
  n = 0
}
/^Romans 1$/ { flush_chapter(); done = 1 }
done { next }
/^  *[0-9]+ / { flush_verse(); sub(/^  *[0-9]+ /, ""); verse = $0; next }
/^$/ { next }
/^[1-3]? ?[A-Z][A-Za-z ]* [0-9]+$/ { flush_chapter(); chapter++; keep = (chapter % 3 == 1); next }
{ verse = verse " " $0 }
END { if (!done) flush_chapter() }
