// Model <-> schema codec: the only code that knows both schema/model.h and schema/state.capnp.
//
// Decoding refuses (returns false with a reason) instead of guessing: an enumerant the reader
// does not know, an index out of range, a process slot list that does not name each type once.
#pragma once
#include <memory>
#include <string>

#include "schema/model.h"
#include "schema/state.capnp.h"

namespace baton {

void encodeModel(const Model& model, state::Model::Builder out);
bool decodeModel(state::Model::Reader in, Model& out, std::string& error);
// The same, but job definitions stay in the message and are decoded on first use (DefRef):
// `owner` keeps the message and the memory it reads from alive as long as one is undecoded.
// Used by a restore, inside the re-exec window; the pre-flight decoded the same definitions in
// full with decodeModel, so their checks (unknown enumerants) have run before the window.
bool decodeModelLazily(state::Model::Reader in, std::shared_ptr<const void> owner, Model& out,
                       std::string& error);

// codec.cpp static_asserts the field count of every model struct against the number of fields it
// serializes, so a field added to the model without a schema field (and codec lines) does not
// compile.

}  // namespace baton
