"""imgr's RPC contract: the methods, their arguments, answers and errors.

imgr serves these over objfs.rpc (port 32356 by default). Arguments are msgpack
maps; Locations travel as [object, offset, length]; pairs maps as
[[key, value], ...]. Every method but Mount and the admin methods takes the
`mount` id that Mount returned. A mount whose lease interrupt went unanswered,
or that was not renewed within the mount TTL, is expelled: each later call
fails with `expelled` (ESTALE), and the client must mount again.

Mounts
    Mount {volume, token}            -> {mount, volume_id, root: 1, renew_every: s}
    RenewMount {mount}               -> {}
    Unmount {mount}                  -> {}      (releases its leases and open counts)

Numbers
    FetchNonceRange {mount, kind: "inode"|"object", count}
                                     -> {first, count}   numbers first..first+count-1
        Never handed out twice, even across imgr crashes (the range is in a
        checkpoint before it is answered). Fresh inode numbers count as
        exclusively leased to the mount that fetched them (nobody else knows
        them) until another mount asks for a lease on one; no Lease call needed.

Inode table
    GetInodeTableEntry {mount, inode} -> [object, offset, length]   (not_found)
    PutInodeTableEntries {mount, entries: [[inode, location], ...],
                          delete: [inode, ...],
                          objects: [[object, size], ...],
                          referenced: [[object, bytes], ...],
                          released: [[object, bytes], ...]}   -> {}
        One atomic batch. `entries` are the new heads; `delete` the inodes
        gone (see DeleteInodeTableEntry); `objects` the objects this batch
        wrote, with their sizes; `referenced` / `released` the payload bytes
        (data extents and payload B+tree pages) newly referenced / no longer
        referenced per object. imgr accounts the head bytes itself (a head's
        Location length). The caller must hold the exclusive lease of every
        inode it changes. An object whose referenced bytes reach zero is
        deleted after the next checkpoint. An inode may be both in `entries`
        and in `delete` only while the caller has it open (counted with
        AdjustInodeOpenCount): its last name went while it was open, so it
        is stored as it is now and kept as an orphan until it is closed.
    DeleteInodeTableEntry {mount, inode} -> {}
        The inode and all its bytes (its head, and the payload its head's
        accounting lists) are released once no mount has it open; until then
        it stays readable by those that do. Such orphans are kept in the
        checkpoint: after an imgr restart they go once the mounts had a
        mount TTL to mount again and reopen them (AdjustInodeOpenCount).
    AdjustInodeOpenCount {mount, inode, delta} -> {open: n}   (this mount's count)
    Flush {mount}                    -> {sequence}
        Returns once a checkpoint holding every Put answered before this call
        is in ickpt. Concurrent Flushes share one checkpoint.

Leases
    Lease {mount, inode, op: "shared"|"exclusive"|"promote"|"demote"|"release"}
                                     -> {mode: "shared"|"exclusive"|"none"}
        A conflicting request interrupts each holder with the upcall below and
        waits until they have let go; a holder that does not answer within the
        lease timeout is expelled.

Upcall to the client
    interrupt {inode, to: "shared"|"none"}  -> anything
        Flush what you have of `inode`, then answer; imgr then counts your lease
        as demoted to `to`. Answering is letting go.

Administration (no mount id; imgr listens on 127.0.0.1 unless told otherwise)
    ListVolumes {}                   -> [{name, url, state}, ...]
    ServeVolume {name, url}          -> {}
    StopServing {name}               -> {}

Errors (objfs.rpc codes): not_found, invalid, permission (bad token; lease
not held), expelled, fenced (another imgr owns the volume now),
no_volume, and the RPC layer's own.
"""

from __future__ import annotations

import errno

from objfs.rpc import CodedError, register

DEFAULT_PORT = 32356
DEFAULT_HTTP_PORT = 15346
ROOT_INODE = 1

LEASE_OPS = ("shared", "exclusive", "promote", "demote", "release")
NONCE_KINDS = ("inode", "object")


@register
class Expelled(CodedError):
    """The mount was expelled (interrupt unanswered, or not renewed); mount again."""

    code = "expelled"
    errno = errno.ESTALE


@register
class Fenced(CodedError):
    """Another imgr took the volume over; this one no longer serves it."""

    code = "fenced"
    errno = errno.EIO


@register
class NoVolume(CodedError):
    """No volume of that name is served here."""

    code = "no_volume"
    errno = errno.ENODEV
