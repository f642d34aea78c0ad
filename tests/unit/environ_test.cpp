#include "base/environ.h"

#include <gtest/gtest.h>

namespace env = baton::environ;

namespace {

std::string expandOk(std::string_view in, const env::Table& t) {
  std::string out, err;
  EXPECT_TRUE(env::expand(in, t, out, err)) << "input: " << in << " error: " << err;
  return out;
}

std::string expandErr(std::string_view in, const env::Table& t) {
  std::string out = "untouched", err;
  EXPECT_FALSE(env::expand(in, t, out, err)) << "input: " << in << " gave: " << out;
  EXPECT_EQ(out, "untouched") << "output must not change on error";
  return err;
}

}  // namespace

TEST(EnvironTable, GetFindsExactKeyOnly) {
  env::Table t{"FOO=1", "FOOBAR=2", "EMPTY=", "EQ=a=b"};
  EXPECT_EQ(env::get(t, "FOO"), "1");
  EXPECT_EQ(env::get(t, "FOOBAR"), "2");
  EXPECT_EQ(env::get(t, "EMPTY"), "");
  EXPECT_EQ(env::get(t, "EQ"), "a=b");
  EXPECT_EQ(env::get(t, "FO"), std::nullopt);
  EXPECT_EQ(env::get(t, "BAR"), std::nullopt);
  EXPECT_EQ(env::get({}, "FOO"), std::nullopt);
}

TEST(EnvironTable, SetKvReplacesInPlaceOrAppends) {
  env::Table t{"A=1", "B=2"};
  EXPECT_TRUE(env::set(t, "A=10"));
  EXPECT_TRUE(env::set(t, "C=3"));
  EXPECT_TRUE(env::set(t, "D="));
  EXPECT_TRUE(env::set(t, "E=x=y"));
  EXPECT_EQ(t, (env::Table{"A=10", "B=2", "C=3", "D=", "E=x=y"}));
}

TEST(EnvironTable, SetKvRejectsEntriesWithoutKeyOrEquals) {
  env::Table t{"A=1"};
  EXPECT_FALSE(env::set(t, "NOEQUALS"));
  EXPECT_FALSE(env::set(t, "=value"));
  EXPECT_FALSE(env::set(t, ""));
  EXPECT_EQ(t, (env::Table{"A=1"}));
}

TEST(EnvironTable, SetKeyValue) {
  env::Table t;
  env::set(t, "A", "1");
  env::set(t, "B", "with space");
  env::set(t, "A", "2");
  EXPECT_EQ(t, (env::Table{"A=2", "B=with space"}));
}

TEST(EnvironTable, MergeReplacesExistingAndAppendsNew) {
  env::Table t{"A=1", "B=2"};
  env::merge(t, {"B=20", "C=30", "junk", "A=10"});
  EXPECT_EQ(t, (env::Table{"A=10", "B=20", "C=30"}));
  env::merge(t, {});
  EXPECT_EQ(t.size(), 3u);
}

TEST(EnvironTable, ValidName) {
  EXPECT_TRUE(env::validName("A"));
  EXPECT_TRUE(env::validName("_"));
  EXPECT_TRUE(env::validName("foo_Bar9"));
  EXPECT_TRUE(env::validName("UPSTART_JOB"));
  EXPECT_FALSE(env::validName(""));
  EXPECT_FALSE(env::validName("9A"));
  EXPECT_FALSE(env::validName("A-B"));
  EXPECT_FALSE(env::validName("A=B"));
  EXPECT_FALSE(env::validName("A B"));
  EXPECT_FALSE(env::validName("$A"));
}

TEST(EnvironExpand, TextWithoutDollarIsUnchanged) {
  EXPECT_EQ(expandOk("", {}), "");
  EXPECT_EQ(expandOk("plain text [2345] *?", {}), "plain text [2345] *?");
}

TEST(EnvironExpand, SimpleAndBracedVariables) {
  env::Table t{"A=alpha", "B=beta", "EMPTY=", "LONG_NAME1=x"};
  EXPECT_EQ(expandOk("$A", t), "alpha");
  EXPECT_EQ(expandOk("${A}", t), "alpha");
  EXPECT_EQ(expandOk("$A-$B", t), "alpha-beta");
  EXPECT_EQ(expandOk("${A}suffix", t), "alphasuffix");
  EXPECT_EQ(expandOk("pre$LONG_NAME1.post", t), "prex.post");
  EXPECT_EQ(expandOk("[$EMPTY]", t), "[]");
  EXPECT_EQ(expandOk("[!$A]", t), "[!alpha]");
}

TEST(EnvironExpand, DollarDollarAndLiteralDollars) {
  env::Table t{"A=1"};
  EXPECT_EQ(expandOk("$$", t), "$");
  EXPECT_EQ(expandOk("$$A", t), "$A");
  EXPECT_EQ(expandOk("cost: 5$", t), "cost: 5$");
  EXPECT_EQ(expandOk("$1 $- $/", t), "$1 $- $/");
}

TEST(EnvironExpand, DefaultAndAlternativeForms) {
  env::Table t{"SET=value", "EMPTY="};
  // ${VAR:-default}: default if unset or empty.
  EXPECT_EQ(expandOk("${SET:-d}", t), "value");
  EXPECT_EQ(expandOk("${EMPTY:-d}", t), "d");
  EXPECT_EQ(expandOk("${UNSET:-d}", t), "d");
  // ${VAR-default}: default only if unset.
  EXPECT_EQ(expandOk("${SET-d}", t), "value");
  EXPECT_EQ(expandOk("${EMPTY-d}", t), "");
  EXPECT_EQ(expandOk("${UNSET-d}", t), "d");
  // ${VAR:+alt}: alt if set and not empty.
  EXPECT_EQ(expandOk("${SET:+alt}", t), "alt");
  EXPECT_EQ(expandOk("${EMPTY:+alt}", t), "");
  EXPECT_EQ(expandOk("${UNSET:+alt}", t), "");
  // ${VAR+alt}: alt if set.
  EXPECT_EQ(expandOk("${SET+alt}", t), "alt");
  EXPECT_EQ(expandOk("${EMPTY+alt}", t), "alt");
  EXPECT_EQ(expandOk("${UNSET+alt}", t), "");
  // Empty words.
  EXPECT_EQ(expandOk("${UNSET:-}", t), "");
  EXPECT_EQ(expandOk("${UNSET-}x", t), "x");
}

TEST(EnvironExpand, WordsAreExpandedAndMayNest) {
  env::Table t{"A=a", "B=b"};
  EXPECT_EQ(expandOk("${UNSET:-$A}", t), "a");
  EXPECT_EQ(expandOk("${UNSET:-${B}-x}", t), "b-x");
  EXPECT_EQ(expandOk("${UNSET:-${ALSO_UNSET:-deep}}", t), "deep");
  EXPECT_EQ(expandOk("${A:+[$B]}", t), "[b]");
  // The unused word is not expanded, so unknown variables in it are not errors.
  EXPECT_EQ(expandOk("${A:-$NOPE}", t), "a");
  EXPECT_EQ(expandOk("${NOPE:+$NOPE2}", t), "");
}

TEST(EnvironExpand, UnknownParameterIsAnError) {
  env::Table t{"A=1"};
  EXPECT_EQ(expandErr("$NOPE", t), "unknown parameter: NOPE");
  EXPECT_EQ(expandErr("x ${NOPE} y", t), "unknown parameter: NOPE");
  EXPECT_EQ(expandErr("$A$MISSING_2", t), "unknown parameter: MISSING_2");
  EXPECT_EQ(expandErr("${UNSET:-$INNER}", t), "unknown parameter: INNER");
  EXPECT_EQ(expandErr("$NOPE", {}), "unknown parameter: NOPE");
}

TEST(EnvironExpand, MalformedSubstitutions) {
  env::Table t{"A=1"};
  EXPECT_EQ(expandErr("${A", t), "missing '}' in ${A");
  EXPECT_EQ(expandErr("x ${A:-${B}", t), "missing '}' in ${A:-${B}");
  EXPECT_EQ(expandErr("${}", t), "bad substitution: ${}");
  EXPECT_EQ(expandErr("${1A}", t), "bad substitution: ${1A}");
  EXPECT_EQ(expandErr("${A:x}", t), "bad substitution: ${A:x}");
  EXPECT_EQ(expandErr("${A=x}", t), "bad substitution: ${A=x}");
  EXPECT_EQ(expandErr("${A:}", t), "bad substitution: ${A:}");
}

TEST(EnvironExpand, NestingIsBounded) {
  std::string ok = "x", tooDeep = "x";
  for (int i = 0; i < 32; ++i) ok = "${U:-" + ok + "}";
  for (int i = 0; i < 33; ++i) tooDeep = "${U:-" + tooDeep + "}";
  EXPECT_EQ(expandOk(ok, {}), "x");
  EXPECT_EQ(expandErr(tooDeep, {}), "substitutions nested too deeply");
}
