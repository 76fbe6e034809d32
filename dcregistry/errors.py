"""Named exceptions. Every message is one line that names the problem and the fix.

``UserError`` subclasses are the user's to fix (CLI exit code 1); anything else is a bug
(exit code 2).
"""

from __future__ import annotations


class DcregError(Exception):
    """Base class of every error raised on purpose by dcregistry and harness."""


class UserError(DcregError):
    """An error caused by input the user can fix; the CLI exits with code 1."""


class ValidationError(UserError):
    """An artifact, its metadata or its tensors break the dcreg/1 contract."""

    def __init__(self, field: str, problem: str, fix: str | None = None):
        self.field = field
        self.problem = problem
        self.fix = fix
        msg = f"{field}: {problem}"
        if fix:
            msg += f" ({fix})"
        super().__init__(msg)


class MetadataError(ValidationError):
    """The metadata block is missing a field or has a wrong value."""


class TensorError(ValidationError):
    """A tensor in data.safetensors has a wrong shape, dtype or value."""


class SafetensorsFormatError(ValidationError):
    """data.safetensors is not a well-formed safetensors file."""


class JSONFormatError(ValidationError):
    """A JSON document (manifest, header, metadata, store file) is malformed, too deep or too big."""


class IntegrityError(UserError):
    """A file's bytes do not match the sha256 recorded in the manifest (tampering or corruption)."""


class NotAnArtifactError(UserError):
    """A path given as an artifact directory has no manifest.json."""


class VerificationFailedError(IntegrityError):
    """``verify --all`` found versions that fail verification (each one is listed)."""


class InvalidNameError(UserError):
    """An artifact name is not of the form ``namespace/name`` with ``[a-z0-9._-]`` parts."""


class InvalidReferenceError(UserError):
    """A reference string cannot be parsed."""


class NotFoundError(UserError):
    """A name, version, tag or digest does not exist in the store."""


class AmbiguousReferenceError(UserError):
    """A digest prefix matches more than one version."""


class TagProtectedError(UserError):
    """An operation would remove a tagged version; pass --force to do it anyway."""


class UnsafeFileError(UserError):
    """A file would need arbitrary unpickling (code execution) to load; it is refused."""


class ImportFormatError(UserError):
    """A file given to ``dcreg import`` does not have the layout of the format named."""


class ExportFormatError(UserError):
    """An artifact cannot be written in the export format asked for (the message says why)."""

    def __init__(self, what: str, problem: str, fix: str | None = None) -> None:
        super().__init__(f"{what}: {problem}" + (f"; {fix}" if fix else ""))


class DatasetNotFoundError(UserError):
    """A dataset's files are not where they are looked for; the message says where to put them."""


class UnknownNameError(UserError):
    """A registry (models, augmentations, protocols, datasets, methods) has no entry of that name."""


class ProtocolError(UserError):
    """A protocol file or override is invalid."""


class BadQueryError(UserError):
    """A ``dcreg list`` query term cannot be parsed or its value is out of range."""


class OutputExistsError(UserError):
    """An output path already holds something that may not be replaced."""


class StorageError(UserError):
    """The filesystem refused an operation for a reason the user or the machine must fix."""


class OutputPathError(StorageError):
    """An output path cannot be used: too long, under a regular file, a dangling symlink,
    inside the store, or otherwise not a place a file or directory can be written."""


class DiskFullError(StorageError):
    """A write ran out of space (ENOSPC) or quota (EDQUOT); nothing partial was left behind."""


class ReadOnlyError(StorageError):
    """A write was refused because the target is on a read-only filesystem or not writable."""


class StoreReadOnlyError(ReadOnlyError):
    """A store mutation (push, tag, rm, gc, annotate) on a store that is not writable."""


class StoreUnavailableError(UserError):
    """A store kind (e.g. the Hugging Face Hub) that this installation cannot reach."""


class StoreLockedError(UserError):
    """Another process held the store's lock for longer than the lock timeout."""


class StoreWarning(UserWarning):
    """Something in a store was skipped (e.g. a damaged tag-log line); the command still works."""


class InvalidAnnotationError(UserError):
    """An annotation kind or record that cannot be stored (not plain JSON, too large)."""


class UnsupportedOperationError(UserError):
    """The store cannot do what the command asks (e.g. record results on a Hub store)."""
