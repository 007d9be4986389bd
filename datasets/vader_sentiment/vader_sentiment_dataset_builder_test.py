"""vader_sentiment dataset: the `tfds new` builder test on a tiny sdist-shaped dummy_data/ archive."""

import hashlib
from unittest import mock

import tensorflow_datasets as tfds

from . import vader_sentiment_dataset_builder as vader

DUMMY_SDIST = vader.Builder.code_path.parent / "dummy_data" / vader.SDIST_NAME


def _accept_dummy_sdist(test):
    """Accepts the dummy sdist's sha256 for one test (it is not the real vaderSentiment sdist)."""
    patcher = mock.patch.object(vader, "SDIST_SHA256", hashlib.sha256(DUMMY_SDIST.read_bytes()).hexdigest())
    patcher.start()
    test.addCleanup(patcher.stop)


class VaderDomainTest(tfds.testing.DatasetBuilderTestCase):
    """Each one-domain config: 3/1/1 rows with a valence, one neutral row dropped."""

    DATASET_CLASS = vader.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["movies", "tweets", "amazon", "nyt"]
    SPLITS = {"train": 3, "validation": 1, "test": 1}

    def setUp(self):
        super().setUp()
        _accept_dummy_sdist(self)


class VaderAllTest(tfds.testing.DatasetBuilderTestCase):
    """The `all` config holds the four domains."""

    DATASET_CLASS = vader.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["all"]
    SPLITS = {"train": 12, "validation": 4, "test": 4}

    def setUp(self):
        super().setUp()
        _accept_dummy_sdist(self)


class VaderHoldOutTest(tfds.testing.DatasetBuilderTestCase):
    """An `all_but_<domain>` config holds the other three domains and no row of the held-out one."""

    DATASET_CLASS = vader.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["all_but_tweets", "all_but_nyt"]
    SPLITS = {"train": 9, "validation": 3, "test": 3}

    def setUp(self):
        super().setUp()
        _accept_dummy_sdist(self)

    def test_the_held_out_domain_is_absent(self):
        for name in self.BUILDER_CONFIG_NAMES_TO_TEST:
            config = next(c for c in vader.Builder.BUILDER_CONFIGS if c.name == name)
            self.assertEqual(len(config.domains), 3)
            self.assertNotIn(name.removeprefix("all_but_"), config.domains)


class VaderParsingTest(tfds.testing.TestCase):
    """Row parsing, the hash split and the sdist check."""

    def test_crlf_and_entities(self):
        raw = b"1\t2.5\tA &amp; B &quot;q&quot;\r\n2\t-1\tplain\r\n3\t0.4\tHirschl &amp;amp; Adler &lt;3"
        rows = list(vader.parse_ground_truth(raw, "tweets"))
        self.assertEqual(rows, [("1", 2.5, 'A & B "q"'), ("2", -1.0, "plain"), ("3", 0.4, "Hirschl & Adler <3")])

    def test_bad_row_is_refused(self):
        with self.assertRaisesRegex(vader.SourceError, "line 1"):
            list(vader.parse_ground_truth(b"1\tonly two fields\r\n", "nyt"))

    def test_split_is_stable_and_depends_on_domain(self):
        self.assertEqual(vader.split_of("movies", "7"), "validation")  # fixed by sha256, not by run
        splits = [vader.split_of("movies", str(i)) for i in range(2000)]
        self.assertAlmostEqual(splits.count("train") / 2000, 0.8, delta=0.03)
        self.assertNotEqual(splits, [vader.split_of("tweets", str(i)) for i in range(2000)])

    def test_wrong_sdist_is_refused(self):
        with self.assertRaisesRegex(vader.SourceError, "expected " + vader.SDIST_SHA256):
            vader.verify_sdist(DUMMY_SDIST)


if __name__ == "__main__":
    tfds.testing.test_main()
