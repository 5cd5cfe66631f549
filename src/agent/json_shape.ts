// How much JSON.parse would build from a line that anyone who can connect may send, found before parsing it.
// A line is bounded in bytes (intake.ts), but not what parsing it costs: a megabyte of "{}," is 350,000
// objects, and 160 such lines took the agent from 46 to 295 MiB (measured). A request is a handful of members
// whatever its size (what is big in it is strings: the network config), so a line with more structure than
// any request is not the protocol, and is refused unparsed.

/** Structural characters ({ [ : ,) outside strings in a request: about 30 with every forwarded variable set. */
export const MAX_STRUCTURE = 128;

/** Whether `text` has at most MAX_STRUCTURE structural characters outside its strings. */
export function shallowEnough(text: string): boolean {
  let n = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // an escape: the next character is not the string's end
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if ((c === 0x7b || c === 0x5b || c === 0x3a || c === 0x2c) && ++n > MAX_STRUCTURE) {
      return false;
    }
  }
  return true;
}
