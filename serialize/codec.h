// Model <-> schema codec: the only code that knows both schema/model.h and schema/state.capnp.
//
// Decoding refuses (returns false with a reason) instead of guessing: an enumerant the reader
// does not know, an index out of range, a process slot list that does not name each type once.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <capnp/any.h>

#include "schema/model.h"
#include "schema/state.capnp.h"

namespace baton {

// ---- copying untouched classes as bytes ----
// A class held encoded since a restore or an idle encoding (ClassMap) is the same bytes in every snapshot. Copying
// it with Cap'n Proto walks every pointer of it, which costs as much as encoding it; but a
// snapshot this image wrote in one segment holds each copied class's objects contiguously (they
// were allocated one after the other), so the next snapshot can take them with one memcpy and
// fix only the class struct's own pointers. The pre-flight snapshot, written while batond still
// serves, records where each class is; the snapshot written in the window then copies bytes.

// One class as a snapshot holds it: its struct (in the classes list) and its objects.
struct ClassImage {
  const capnp::word* structWords = nullptr;  // data section, then pointer section
  uint32_t dataWords = 0, pointerCount = 0;
  const capnp::word* objects = nullptr;      // everything the struct points to, contiguous
  size_t objectWords = 0;
};

// Images of classes by where they are encoded (ClassSource and index), and what keeps the memory
// they point into mapped.
struct ClassImages {
  std::shared_ptr<const void> keep;
  std::map<std::pair<const ClassSource*, uint32_t>, ClassImage> byClass;
};

struct EncodeHooks {
  // Recording (writeSnapshot sets `cursor` when `record` is set): the builder's allocation
  // cursor (words used in its only segment), and for each class copied from a ClassSource,
  // where its objects went: [begin, end) of segment 0.
  bool record = false;
  std::function<size_t()> cursor;
  struct Extent {
    const ClassSource* source;
    uint32_t index, listIndex;
    size_t begin, end;
  };
  std::vector<Extent> extents;
  // Placing: a class with an image is not copied; its struct is left for placeImages().
  const ClassImages* images = nullptr;
  struct Pending {
    capnp::word* structWords;
    const ClassImage* image;
    uint32_t listIndex;
  };
  std::vector<Pending> pending;
  // With images: list the placed classes in Model.preverifiedClasses (the target's pre-flight
  // verified exactly their bytes).
  bool markPreverified = false;
};

void encodeModel(const Model& model, state::Model::Builder out, EncodeHooks* hooks = nullptr);

// After encodeModel with hooks.images: copy each pending class's objects to `free` (words after
// everything the builder allocated, inside the same segment) and point its struct at them.
// Returns the words used, or SIZE_MAX if `freeWords` is too small (nothing usable was written).
size_t placeImages(const EncodeHooks& hooks, capnp::word* free, size_t freeWords);

// The images of the classes `extents` recorded, in `segment` (segment 0 of the snapshot that was
// written with them, as `model` reads it). A class whose struct does not point into its own
// objects is left out (it is copied the slow way).
void collectImages(state::Model::Reader model, const capnp::word* segment, const std::vector<EncodeHooks::Extent>& extents,
                   ClassImages& out);
// Idle encoding: encode every decoded class `hold` accepts into one new message and leave them
// encoded there, as a restore leaves the classes it reads (until ClassMap::decode decodes one
// again). Classes still encoded in a message of which fewer than three quarters are left
// move too (as bytes), so that messages partly decoded since can be freed. A class the loop's scans need decoded
// (decodeNow) stays as it is. Returns how many classes the new message holds for the model.
size_t holdEncoded(ClassMap& classes, const std::function<bool(const JobClass&)>& hold);

bool decodeModel(state::Model::Reader in, Model& out, std::string& error);
// The same, but job definitions stay in the message and are decoded on first use (DefRef):
// `owner` keeps the message and the memory it reads from alive as long as one is undecoded.
// Used by a restore, inside the re-exec window; the pre-flight decoded the same definitions in
// full with decodeModel, so their checks (unknown enumerants) have run before the window.
// `trustPreverified` (a restore told so by its handoff): the classes `preverifiedClasses` lists
// are byte copies of classes this binary's pre-flight checked; they are not checked again. An
// index out of range is refused.
bool decodeModelLazily(state::Model::Reader in, std::shared_ptr<const void> owner, Model& out,
                       std::string& error, bool trustPreverified = false);

// codec.cpp static_asserts the field count of every model struct against the number of fields it
// serializes, so a field added to the model without a schema field (and codec lines) does not
// compile.

}  // namespace baton
