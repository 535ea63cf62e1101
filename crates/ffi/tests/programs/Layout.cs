// The wrapper's structs are laid out as partyline.h says: Marshal.SizeOf
// and Marshal.OffsetOf of every struct and field equal the header's layout
// asserts, every field the wrapper declares is asserted there, and the
// native library's PlEvent is the wrapper's.
//
//   mono Layout.exe partyline.h      (run by crates/ffi/tests/csharp_sample.rs)

using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Partyline
{
    static class LayoutCheck
    {
        static readonly List<string> Wrong = new List<string>();

        static int Main(string[] args)
        {
            string header = File.ReadAllText(args[0]);
            var sizes = new Dictionary<string, int>();
            var offsets = new Dictionary<string, Dictionary<string, int>>();
            foreach (Match m in Regex.Matches(header, @"PL_ABI_ASSERT\(sizeof\((Pl\w+)\) == (\d+),"))
            {
                sizes[m.Groups[1].Value] = int.Parse(m.Groups[2].Value);
                offsets[m.Groups[1].Value] = new Dictionary<string, int>();
            }
            foreach (Match m in Regex.Matches(header, @"PL_ABI_ASSERT\(offsetof\((Pl\w+), (\w+)\) == (\d+),"))
            {
                offsets[m.Groups[1].Value][m.Groups[2].Value] = int.Parse(m.Groups[3].Value);
            }
            if (sizes.Count == 0) Wrong.Add("no layout asserts found in " + args[0]);
            int fields = 0;
            foreach (var entry in sizes)
            {
                string name = entry.Key;
                Type type = typeof(Native).GetNestedType(name, BindingFlags.Public | BindingFlags.NonPublic);
                if (type == null)
                {
                    Wrong.Add("the wrapper has no struct " + name);
                    continue;
                }
                int size = Marshal.SizeOf(type);
                if (size != entry.Value) Wrong.Add("sizeof(" + name + "): header " + entry.Value + ", C# " + size);
                foreach (FieldInfo field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
                {
                    if (!offsets[name].ContainsKey(field.Name)) Wrong.Add(name + "." + field.Name + " is not in the header");
                }
                foreach (var expected in offsets[name])
                {
                    fields++;
                    if (type.GetField(expected.Key, BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic) == null)
                    {
                        Wrong.Add(name + "." + expected.Key + " is missing in the wrapper");
                        continue;
                    }
                    int offset = Marshal.OffsetOf(type, expected.Key).ToInt32();
                    if (offset != expected.Value)
                        Wrong.Add("offsetof(" + name + ", " + expected.Key + "): header " + expected.Value + ", C# " + offset);
                }
            }
            long native = (long)Native.pl_event_size().ToUInt64();
            if (native != Marshal.SizeOf(typeof(Native.PlEvent)))
                Wrong.Add("the library's PlEvent is " + native + " bytes, the wrapper's " + Marshal.SizeOf(typeof(Native.PlEvent)));
            foreach (var wrong in Wrong) Console.Error.WriteLine("FAILED: " + wrong);
            if (Wrong.Count > 0) return 1;
            Console.WriteLine("the layout of " + sizes.Count + " structs and " + fields + " fields matches partyline.h");
            return 0;
        }
    }
}
