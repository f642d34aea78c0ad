// The migration steps between formats 1 and 2, each on its own (migrate/steps.h), and the frozen
// format-1 schema against the current one.
#include <capnp/message.h>
#include <capnp/pretty-print.h>
#include <capnp/schema.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "migrate/formats.h"
#include "migrate/steps.h"
#include "schema/state.capnp.h"
#include "schema/state_v1.capnp.h"

namespace baton {
namespace {

// A format-2 body: job `svc` (expect notify) with instances in the given ready states, and job
// `plain` (expect none) running.
void buildV2(capnp::MessageBuilder& msg, std::initializer_list<state::ReadyState> ready, bool notify = true) {
  auto m = msg.initRoot<state::Model>();
  m.setNotifyFd(7);
  m.setNotifyRefused(3);
  auto classes = m.initClasses(2);
  classes[0].setName("plain");
  classes[0].initDefs(1)[0].setName("plain");
  classes[0].initInstances(1)[0].setState(state::JobState::RUNNING);
  classes[1].setName("svc");
  auto d = classes[1].initDefs(1)[0];
  d.setName("svc");
  d.setExpect(notify ? state::ExpectType::NOTIFY : state::ExpectType::DAEMON);
  d.setReadyTimeoutMs(5000);
  d.setContentHash("abc");
  auto insts = classes[1].initInstances(unsigned(ready.size()));
  unsigned i = 0;
  for (state::ReadyState r : ready) {
    insts[i].setName("i" + std::to_string(i));
    insts[i].setReadyState(r);
    insts[i].setStatusText("serving");
    if (r == state::ReadyState::WAITING) insts[i].setReadyDeadlineNs(123);
    ++i;
  }
}

bool down(capnp::MallocMessageBuilder& in, capnp::MallocMessageBuilder& out, MigrationNotes& notes, std::string& error) {
  capnp::SegmentArrayMessageReader reader(in.getSegmentsForOutput());
  return downgrade2to1(reader, out, notes, error);
}

TEST(MigrationSteps, DowngradeWithoutNotifyJobsCopiesAndDropsTheSocket) {
  capnp::MallocMessageBuilder in, out;
  buildV2(in, {}, /*notify=*/false);
  MigrationNotes notes;
  std::string error;
  ASSERT_TRUE(down(in, out, notes, error)) << error;
  EXPECT_TRUE(notes.mapped.empty());
  auto v1 = out.getRoot<state_v1::Model>();
  ASSERT_EQ(v1.getClasses().size(), 2u);
  EXPECT_EQ(v1.getClasses()[1].getDefs()[0].getExpect(), state_v1::ExpectType::DAEMON);
  auto v2 = out.getRoot<state::Model>();  // what a later upgrade would find
  EXPECT_EQ(v2.getNotifyFd(), -1);
  EXPECT_EQ(v2.getNotifyRefused(), 0u);
}

TEST(MigrationSteps, DowngradeOfANotifyDefinitionNeedsConsent) {
  capnp::MallocMessageBuilder in;
  buildV2(in, {});
  MigrationNotes refused;
  std::string error;
  capnp::MallocMessageBuilder out1;
  EXPECT_FALSE(down(in, out1, refused, error));
  EXPECT_NE(error.find("job 'svc' would be mapped from `expect notify` to `expect none`"), std::string::npos) << error;
  EXPECT_NE(error.find("--allow-downgrade-mapping"), std::string::npos) << error;

  MigrationNotes allowed{.mayMap = true};
  capnp::MallocMessageBuilder out2;
  ASSERT_TRUE(down(in, out2, allowed, error)) << error;
  ASSERT_EQ(allowed.mapped.size(), 1u);
  EXPECT_EQ(allowed.mapped[0], "job 'svc': `expect notify` becomes `expect none`");
  auto d = out2.getRoot<state_v1::Model>().getClasses()[1].getDefs()[0];
  EXPECT_EQ(d.getExpect(), state_v1::ExpectType::NONE);
  EXPECT_EQ(std::string(d.getContentHash().cStr()), "");  // re-read by a release that knows notify
}

TEST(MigrationSteps, DowngradeOfReadyInstancesMapsThemWithConsent) {
  capnp::MallocMessageBuilder in, out;
  buildV2(in, {state::ReadyState::READY, state::ReadyState::RELOADING});
  MigrationNotes notes{.mayMap = true};
  std::string error;
  ASSERT_TRUE(down(in, out, notes, error)) << error;
  ASSERT_EQ(notes.mapped.size(), 1u);
  EXPECT_EQ(notes.mapped[0],
            "job 'svc': `expect notify` becomes `expect none`; the readiness and status text of 'svc (i0)', "
            "'svc (i1)' are dropped");
  for (auto i : out.getRoot<state::Model>().getClasses()[1].getInstances()) {
    EXPECT_EQ(i.getReadyState(), state::ReadyState::NONE);
    EXPECT_FALSE(i.hasStatusText());
  }
}

TEST(MigrationSteps, DowngradeWhileWaitingIsRefusedEvenWithConsent) {
  capnp::MallocMessageBuilder in, out;
  buildV2(in, {state::ReadyState::READY, state::ReadyState::WAITING});
  MigrationNotes notes{.mayMap = true};
  std::string error;
  EXPECT_FALSE(down(in, out, notes, error));
  EXPECT_EQ(error, "format 1 has no readiness notification, and 'svc (i1)' is still waiting for it: retry once ready or stopped");
  EXPECT_TRUE(notes.mapped.empty());
}

TEST(MigrationSteps, UpgradeCopiesAndReadsTheNewFieldsAsAbsent) {
  capnp::MallocMessageBuilder in;
  auto m = in.initRoot<state_v1::Model>();
  m.setListenFd(4);
  auto c = m.initClasses(1)[0];
  c.setName("old");
  c.initDefs(1)[0].setExpect(state_v1::ExpectType::FORK);
  c.initInstances(1)[0].setState(state_v1::JobState::RUNNING);
  capnp::SegmentArrayMessageReader reader(in.getSegmentsForOutput());
  capnp::MallocMessageBuilder out;
  MigrationNotes notes;
  std::string error;
  ASSERT_TRUE(upgrade1to2(reader, out, notes, error)) << error;
  auto v2 = out.getRoot<state::Model>();
  EXPECT_EQ(v2.getListenFd(), 4);
  EXPECT_EQ(v2.getNotifyFd(), -1);  // the restore opens one
  EXPECT_EQ(v2.getClasses()[0].getDefs()[0].getExpect(), state::ExpectType::FORK);
  EXPECT_EQ(v2.getClasses()[0].getDefs()[0].getReadyTimeoutMs(), 90000);
  EXPECT_EQ(v2.getClasses()[0].getInstances()[0].getReadyState(), state::ReadyState::NONE);
}

TEST(MigrationSteps, UpgradeRefusesAnExpectFormatOneNeverHad) {
  capnp::MallocMessageBuilder in;
  auto c = in.initRoot<state_v1::Model>().initClasses(1)[0];
  c.setName("odd");
  c.initDefs(1)[0].setExpect(state_v1::ExpectType(4));
  capnp::SegmentArrayMessageReader reader(in.getSegmentsForOutput());
  capnp::MallocMessageBuilder out;
  MigrationNotes notes;
  std::string error;
  EXPECT_FALSE(upgrade1to2(reader, out, notes, error));
  EXPECT_EQ(error, "job 'odd' has expect type 4, which format 1 does not have");
}

TEST(MigrationSteps, FormatPathText) {
  EXPECT_EQ(formatPath(2, 2), "2 (no migration)");
  EXPECT_EQ(formatPath(1, 2), "1 -> 2 (1 upgrade step)");
  EXPECT_EQ(formatPath(2, 1), "2 -> 1 (1 downgrade step)");
  EXPECT_EQ(formatPath(1, 3), "1 -> 3 (2 upgrade steps)");
}

// Format 2 only appended to format 1: every field of every struct of the frozen schema is in the
// current one with the same name, ordinal, type and default, and so is every enumerant. (The
// frozen schema is what format 1 is; this is what makes a copy a valid upgrade.)
void expectPrefix(capnp::StructSchema v1, capnp::StructSchema v2, std::set<uint64_t>& seen, const std::string& where) {
  if (!seen.insert(v1.getProto().getId()).second) return;
  auto f1 = v1.getFields(), f2 = v2.getFields();
  ASSERT_LE(f1.size(), f2.size()) << where;
  for (unsigned i = 0; i < f1.size(); ++i) {
    auto a = f1[i].getProto(), b = f2[i].getProto();
    const std::string name = where + "." + a.getName().cStr();
    EXPECT_EQ(std::string(a.getName().cStr()), std::string(b.getName().cStr())) << name;
    EXPECT_EQ(a.getOrdinal().getExplicit(), b.getOrdinal().getExplicit()) << name;
    ASSERT_EQ(a.which(), b.which()) << name;
    if (!a.isSlot()) continue;
    EXPECT_EQ(a.getSlot().getOffset(), b.getSlot().getOffset()) << name;
    auto t1 = f1[i].getType(), t2 = f2[i].getType();
    ASSERT_EQ(t1.which(), t2.which()) << name;
    EXPECT_EQ(std::string(kj::str(a.getSlot().getDefaultValue()).cStr()),
              std::string(kj::str(b.getSlot().getDefaultValue()).cStr())) << name;
    if (t1.isList()) t1 = t1.asList().getElementType(), t2 = t2.asList().getElementType();
    if (t1.isStruct()) expectPrefix(t1.asStruct(), t2.asStruct(), seen, name);
    if (t1.isEnum()) {
      auto e1 = t1.asEnum().getEnumerants(), e2 = t2.asEnum().getEnumerants();
      ASSERT_LE(e1.size(), e2.size()) << name;
      for (unsigned k = 0; k < e1.size(); ++k)
        EXPECT_EQ(std::string(e1[k].getProto().getName().cStr()), std::string(e2[k].getProto().getName().cStr())) << name;
    }
  }
}

TEST(MigrationSteps, FormatTwoOnlyAppendsToTheFrozenFormatOne) {
  std::set<uint64_t> seen;
  expectPrefix(capnp::Schema::from<state_v1::Model>(), capnp::Schema::from<state::Model>(), seen, "Model");
  EXPECT_GT(seen.size(), 10u);  // the walk reached the nested structs
  EXPECT_EQ(capnp::Schema::from<state_v1::ExpectType>().getEnumerants().size() + 1,
            capnp::Schema::from<state::ExpectType>().getEnumerants().size());  // notify is the change
}

}  // namespace
}  // namespace baton
