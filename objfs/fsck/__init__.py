"""fsck and gc: check a volume against everything its checkpoint reaches, repair, collect.

walk (read and check every structure) -> checks (names, links, lost inodes,
space) -> objects (container vs walk: missing, orphans) -> blocks (data
against digest tables) -> report; repair and edit make the safe fixes; run
puts them in order for the verbs of objfs.commands.fsck.
"""
