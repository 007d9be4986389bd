"""aclimdb dataset: the `tfds new` builder test on dummy_data/ plus the archive check."""

import hashlib
from unittest import mock

import tensorflow_datasets as tfds

from . import aclimdb_dataset_builder

DUMMY_ARCHIVE = aclimdb_dataset_builder.Builder.code_path.parent / "dummy_data" / "aclImdb_v1.tar.gz"


def _dummy_archive_known():
    """Accepts the dummy archive for the duration of a test (it is not a real IMDB archive)."""
    data = DUMMY_ARCHIVE.read_bytes()
    return mock.patch.dict(aclimdb_dataset_builder.KNOWN_ARCHIVES, {hashlib.sha256(data).hexdigest(): len(data)})


class AclimdbTest(tfds.testing.DatasetBuilderTestCase):
    """Tests for aclimdb dataset."""

    DATASET_CLASS = aclimdb_dataset_builder.Builder
    SPLITS = {"train": 4, "test": 3, "unsupervised": 3}
    OVERLAPPING_SPLITS = []

    def setUp(self):
        super().setUp()
        patcher = _dummy_archive_known()
        patcher.start()
        self.addCleanup(patcher.stop)


class VerifyArchiveTest(tfds.testing.TestCase):
    """The archive check used before anything is written."""

    def test_unknown_archive_is_refused(self):
        with self.assertRaisesRegex(aclimdb_dataset_builder.SourceError, "not a known-good"):
            aclimdb_dataset_builder.verify_archive(DUMMY_ARCHIVE)

    def test_missing_archive_is_refused(self):
        with self.assertRaisesRegex(aclimdb_dataset_builder.SourceError, "not found"):
            aclimdb_dataset_builder.verify_archive(DUMMY_ARCHIVE.parent / "absent.tar.gz")

    def test_checksums_tsv_lists_original_and_rebuild(self):
        known = aclimdb_dataset_builder.KNOWN_ARCHIVES
        self.assertEqual(known["c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"], 84125825)
        self.assertEqual(known["91ab3079f70de8a9697b762bba75c97e4c82d1f1b49e151618e666091fb6a7fc"], 56743801)

    def test_examples_match_imdb_reviews_format(self):
        with _dummy_archive_known():
            examples = list(aclimdb_dataset_builder.Builder._generate_examples(
                None, DUMMY_ARCHIVE, "train", labeled=True))
            unsup = list(aclimdb_dataset_builder.Builder._generate_examples(
                None, DUMMY_ARCHIVE, "train", labeled=False))
        labels = sorted(ex["label"] for _, ex in examples)
        self.assertEqual(labels, ["neg", "neg", "pos", "pos"])
        self.assertEqual({ex["label"] for _, ex in unsup}, {-1})
        key, first = examples[0]
        self.assertTrue(key.startswith("aclImdb/train/"))
        self.assertEqual(first["text"], first["text"].strip())  # stripped like imdb_reviews


if __name__ == "__main__":
    tfds.testing.test_main()
