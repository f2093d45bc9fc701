// Link-layer addresses as text, in the one spelling JS sees for both links and FDB entries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace nodenet {

// Lower-case hex octets joined by colons ("02:42:ac:11:00:02"), as iproute2 prints them; "" for no
// bytes. Any length, not just six: an InfiniBand or tunnel link has an address of another size.
std::string MacText(const uint8_t* bytes, size_t len);

}  // namespace nodenet
